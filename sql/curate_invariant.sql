-- Every successfully downloaded sample is in exactly one of curated/ and dropped/, and nothing else is.
-- $sidecars: list of ingest shards/NNNNN.parquet; $curated / $dropped: globs of the curate output.
-- One row: success, missing (in neither), duplicated (twice or in both), unknown (not a success key); ok when 0.
WITH success AS (
    SELECT DISTINCT key FROM read_parquet($sidecars, union_by_name = true) WHERE status = 'success'
),
outcome AS (
    SELECT key FROM read_parquet($curated, union_by_name = true)
    UNION ALL
    SELECT key FROM read_parquet($dropped)
),
counted AS (
    SELECT key, count(*) AS n FROM outcome GROUP BY key
)
SELECT
    (SELECT count(*) FROM success) AS success,
    (SELECT count(*) FROM success LEFT JOIN counted USING (key) WHERE counted.key IS NULL) AS missing,
    (SELECT count(*) FROM counted WHERE n > 1) AS duplicated,
    (SELECT count(*) FROM counted LEFT JOIN success USING (key) WHERE success.key IS NULL) AS unknown
