-- The curation pool: every successfully downloaded sample of the finished shards, with its CLIP score joined on.
-- $sidecars: list of shards/NNNNN.parquet; $scores: list of OUT/scores/NNNNN.parquet.
SELECT
    m.* EXCLUDE (filename),
    regexp_extract(m.filename, '([^/\\]+)\.parquet$', 1) AS shard,
    s.clip_score,
    s.model,
    s.clip_error,
    s.embedding_ref,
    s.phash,
    s.image_bytes
FROM read_parquet($sidecars, union_by_name = true, filename = true) AS m
LEFT JOIN read_parquet($scores, union_by_name = true) AS s ON s.key = m.key
WHERE m.status = 'success'
ORDER BY m.key
