-- Kept and dropped totals. $curated / $dropped: globs of OUT/curated/*.parquet and OUT/dropped/*.parquet.
SELECT
    (SELECT count(*) FROM read_parquet($curated, union_by_name = true)) AS kept,
    (SELECT count(*) FROM read_parquet($dropped)) AS dropped
