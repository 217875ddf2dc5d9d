-- Per-shard counts from img2dataset's stats files, with the tar size on disk.
SELECT
    s.shard,
    s.count::BIGINT AS rows,
    s.successes::BIGINT AS success,
    (s.failed_to_download + s.failed_to_resize)::BIGINT AS failed,
    round(s.successes / nullif(s.count, 0), 3) AS success_rate,
    t.size::BIGINT AS tar_bytes,
    round(s.duration, 2) AS seconds
FROM shard_stats s
LEFT JOIN tars t ON t.shard = s.shard
ORDER BY s.shard;
