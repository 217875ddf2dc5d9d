-- Document accounting after the download: one outcome per image occurrence and per input document.
-- Inputs (views made by pipelines/documents/ingest.py):
--   docs(doc_id, input_file, input_row, items, ...)   accepted documents of the partition
--   doc_rejects(input_file, input_row, reason, detail) documents rejected while parsing
--   sidecars(url, key, status, error_message, ...)    every finished shard of the folder (any partition)
--   url_rejects(url, reason)                          image URLs this partition's prepare step rejected
CREATE OR REPLACE TEMP TABLE image_outcomes AS
WITH occurrences AS (
    SELECT doc_id, pos - 1 AS item, items[pos].url AS url, items[pos].placed AS placed, items[pos].meta AS meta
    FROM (SELECT doc_id, items, generate_subscripts(items, 1) AS pos FROM docs)
    WHERE items[pos].type = 'image'
),
downloads AS (
    SELECT * FROM sidecars
    QUALIFY row_number() OVER (PARTITION BY url ORDER BY status = 'success' DESC, key) = 1
),
reasons AS (
    SELECT url, any_value(reason) AS reason FROM url_rejects
    WHERE reason <> 'duplicate_url_earlier_partition' GROUP BY url
)
SELECT
    o.doc_id, o.item::INTEGER AS item, o.url, o.placed, o.meta,
    CASE WHEN d.status = 'success' THEN d.key END AS key,
    CASE
        WHEN o.url IS NULL THEN 'rejected'
        WHEN d.status = 'success' THEN 'downloaded'
        WHEN d.status IS NOT NULL THEN 'failed'
        WHEN r.reason IS NOT NULL THEN 'rejected'
        ELSE 'not_downloaded'
    END AS outcome,
    CASE
        WHEN o.url IS NULL THEN 'missing_url'
        WHEN d.status = 'success' THEN NULL
        WHEN d.status IS NOT NULL THEN
            CASE WHEN regexp_matches(d.error_message, '^[a-z_]+: ') THEN split_part(d.error_message, ':', 1)
                 WHEN d.error_message ILIKE '%decod%' THEN 'decode_error'  -- img2dataset's resizer
                 ELSE 'download_error' END
        WHEN r.reason IS NOT NULL THEN r.reason
        ELSE 'shard_not_finished'
    END AS reason,
    d.error_message,
    d.width, d.height, d.original_width, d.original_height
FROM occurrences o
LEFT JOIN downloads d ON o.url = d.url
LEFT JOIN reasons r ON o.url = r.url
ORDER BY o.doc_id, o.item;

CREATE OR REPLACE TEMP TABLE doc_outcomes AS
SELECT
    d.doc_id, d.input_file, d.input_row,
    CASE WHEN count(i.key) > 0 THEN 'kept' ELSE 'dropped' END AS outcome,
    CASE WHEN count(i.key) = 0 THEN 'no_image_downloaded' END AS reason,
    NULL::VARCHAR AS detail,
    count(i.item)::INTEGER AS n_images,
    count(i.key)::INTEGER AS n_downloaded
FROM docs d LEFT JOIN image_outcomes i ON d.doc_id = i.doc_id
GROUP BY d.doc_id, d.input_file, d.input_row
UNION ALL
SELECT NULL::VARCHAR AS doc_id, input_file, input_row, 'rejected' AS outcome, reason, detail,
       NULL::INTEGER AS n_images, NULL::INTEGER AS n_downloaded
FROM doc_rejects
ORDER BY input_file, input_row;
