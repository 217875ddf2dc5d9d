-- Pre-download accounting: every input row is either kept for download or rejected with one reason.
-- Inputs (made by pipelines/ingest/metadata_preparer.py):
--   metadata(url, caption, ..., input_file, input_row, file_ord, h_hi, h_lo)  canonical rows of this partition,
--                                                   h_hi/h_lo the two halves of md5_number(url)
--   earlier_urls(h_hi, h_lo, ref)                   URL-index hits: URLs kept by earlier partitions, ref = file#row
-- The first occurrence of a URL (by file order, then row) is kept; later ones are rejected as duplicates.
CREATE OR REPLACE TEMP TABLE classified AS
WITH ranked AS (
    SELECT
        m.*,
        row_number() OVER w AS url_rank,
        first_value(m.input_file || '#' || m.input_row) OVER w AS first_ref
    FROM metadata m
    WINDOW w AS (PARTITION BY m.url ORDER BY m.file_ord, m.input_row)
),
reasoned AS (
    SELECT
        r.*,
        e.ref AS earlier_ref,
        CASE
            WHEN r.url IS NULL OR trim(r.url) = '' THEN 'missing_url'
            WHEN NOT regexp_matches(r.url, '^https?://[^/\s?#]+([/?#]\S*)?$', 'i') THEN 'invalid_url'
            WHEN e.ref IS NOT NULL THEN 'duplicate_url_earlier_partition'
            WHEN r.url_rank > 1 THEN 'duplicate_url'
        END AS reason
    FROM ranked r
    LEFT JOIN earlier_urls e ON r.h_hi = e.h_hi AND r.h_lo = e.h_lo
)
SELECT
    * EXCLUDE (url_rank, first_ref, earlier_ref),
    CASE reason
        WHEN 'duplicate_url_earlier_partition' THEN earlier_ref
        WHEN 'duplicate_url' THEN first_ref
    END AS duplicate_of
FROM reasoned
ORDER BY file_ord, input_row;
