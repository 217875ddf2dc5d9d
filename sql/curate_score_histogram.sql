-- CLIP score histogram of the selected pool: $bins equal-width bins from the lowest to the highest score, each with how
-- many of its samples were kept. $scores: the selected shards' OUT/scores/NNNNN.parquet files; $curated: glob of
-- OUT/curated/*.parquet. Unscored samples (null or NaN score) are left out.
WITH s AS (
    SELECT sc.clip_score AS score, c.key IS NOT NULL AS kept
    FROM read_parquet($scores) sc
    LEFT JOIN (SELECT DISTINCT key FROM read_parquet($curated, union_by_name = true)) c ON c.key = sc.key
    WHERE sc.clip_score IS NOT NULL AND NOT isnan(sc.clip_score)
),
r AS (SELECT min(score) AS lo, max(score) AS hi FROM s)
SELECT
    least(floor((score - lo) / greatest((hi - lo) / $bins, 1e-9)), $bins - 1)::INTEGER AS bin,
    any_value(lo) AS lo,
    any_value(hi) AS hi,
    count(*)::BIGINT AS samples,
    count(*) FILTER (WHERE kept)::BIGINT AS kept
FROM s, r
GROUP BY bin
ORDER BY bin
