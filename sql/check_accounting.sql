-- The accounting invariant: every input row appears exactly once, in a shard sidecar or in the rejects ledger.
-- Returns one row; the invariant holds when missing = 0 and duplicated = 0 and duplicate_keys = 0.
WITH outcomes AS (
    SELECT input_file, input_row FROM samples
    UNION ALL
    SELECT input_file, input_row FROM rejects
),
per_row AS (
    SELECT input_file, input_row, count(*) AS n FROM outcomes GROUP BY ALL
)
SELECT
    (SELECT coalesce(sum(input_rows), 0) FROM partitions)::BIGINT AS expected,
    (SELECT count(*) FROM per_row)::BIGINT AS accounted,
    ((SELECT coalesce(sum(input_rows), 0) FROM partitions) - (SELECT count(*) FROM per_row))::BIGINT AS missing,
    (SELECT count(*) FROM per_row WHERE n > 1)::BIGINT AS duplicated,
    (SELECT count(*) - count(DISTINCT key) FROM samples)::BIGINT AS duplicate_keys;
