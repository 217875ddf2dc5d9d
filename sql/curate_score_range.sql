-- CLIP score sanity over OUT/scores/*.parquet ($scores: glob): out-of-range and NaN scores must both be 0.
SELECT
    count(*) AS samples,
    count(clip_score) AS scored,
    count(*) FILTER (WHERE isnan(clip_score)) AS nan_scores,
    count(*) FILTER (WHERE clip_score < -1 OR clip_score > 1) AS out_of_range,
    min(clip_score) AS min_score,
    max(clip_score) AS max_score,
    count(DISTINCT model) AS models
FROM read_parquet($scores)
