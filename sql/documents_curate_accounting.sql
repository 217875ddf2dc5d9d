-- Document accounting of a curation folder: the ledgers hold every document of the ingest folder once and every
-- image occurrence of a parsed document once; kept images are exactly the curated keys.
-- Views (pipelines/documents/stats.py): doc_ledger, image_ledger, curated(key), manifests(input_documents,
-- image_occurrences) of the ingest folder the curation read.
WITH per_doc AS (
    SELECT input_file, input_row, count(*) AS n FROM doc_ledger GROUP BY ALL
),
per_image AS (
    SELECT doc_id, item, count(*) AS n FROM image_ledger GROUP BY ALL
)
SELECT
    (SELECT coalesce(sum(input_documents), 0) FROM manifests)::BIGINT AS documents_expected,
    (SELECT count(*) FROM per_doc)::BIGINT AS documents_accounted,
    (SELECT count(*) FROM per_doc WHERE n > 1)::BIGINT AS documents_duplicated,
    (SELECT coalesce(sum(image_occurrences), 0) FROM manifests)::BIGINT AS images_expected,
    (SELECT count(*) FROM per_image)::BIGINT AS images_accounted,
    (SELECT count(*) FROM per_image WHERE n > 1)::BIGINT AS images_duplicated,
    (SELECT count(*) FROM (SELECT DISTINCT key FROM image_ledger WHERE outcome = 'kept'
                           EXCEPT SELECT key FROM curated))::BIGINT AS kept_not_curated,
    (SELECT count(*) FROM (SELECT key FROM curated
                           EXCEPT SELECT key FROM image_ledger WHERE outcome = 'kept'))::BIGINT AS curated_not_kept;
