-- The accounting invariant of every track, one row per level: each expected input unit has exactly one outcome row
-- and sample keys are unique. Views (built by each track's `outcome_views`, see pipelines/core/accounting.py):
--   expected(level, n)          units each level expects (rows are summed, e.g. one per partition manifest)
--   outcomes(level, unit, key)  one row per outcome of an input unit (unit: input_file#input_row, doc_id#item,
--                               a clip key...); key: the sample key where there is one, else NULL
-- The level holds when missing = 0, duplicated = 0 and duplicate_keys = 0 (pipelines.core.accounting).
WITH want AS (
    SELECT level, sum(n)::BIGINT AS expected FROM expected GROUP BY level
), per_unit AS (
    SELECT level, unit, count(*) AS n FROM outcomes GROUP BY ALL
), got AS (
    SELECT level, count(*)::BIGINT AS accounted, count(*) FILTER (WHERE n > 1)::BIGINT AS duplicated
    FROM per_unit GROUP BY level
), keys AS (
    SELECT level, (count(key) - count(DISTINCT key))::BIGINT AS duplicate_keys FROM outcomes GROUP BY level
)
SELECT
    level,
    expected,
    coalesce(accounted, 0)::BIGINT AS accounted,
    (expected - coalesce(accounted, 0))::BIGINT AS missing,
    coalesce(duplicated, 0)::BIGINT AS duplicated,
    coalesce(duplicate_keys, 0)::BIGINT AS duplicate_keys
FROM want LEFT JOIN got USING (level) LEFT JOIN keys USING (level)
ORDER BY level;
