-- Document accounting: every input document has exactly one outcome row, and every image occurrence of a parsed
-- document exactly one. Views (pipelines/documents/stats.py): manifests(name, input_documents, image_occurrences) of
-- the ingest folder; doc_outcomes and image_outcomes: the ingest outcome files, or a curation folder's ledgers.
WITH per_doc AS (
    SELECT input_file, input_row, count(*) AS n FROM doc_outcomes GROUP BY ALL
),
per_image AS (
    SELECT doc_id, item, count(*) AS n FROM image_outcomes GROUP BY ALL
)
SELECT
    (SELECT coalesce(sum(input_documents), 0) FROM manifests)::BIGINT AS documents_expected,
    (SELECT count(*) FROM per_doc)::BIGINT AS documents_accounted,
    (SELECT count(*) FROM per_doc WHERE n > 1)::BIGINT AS documents_duplicated,
    (SELECT coalesce(sum(image_occurrences), 0) FROM manifests)::BIGINT AS images_expected,
    (SELECT count(*) FROM per_image)::BIGINT AS images_accounted,
    (SELECT count(*) FROM per_image WHERE n > 1)::BIGINT AS images_duplicated;
