-- One row of headline counts over an ingest folder. Views: samples, rejects, shard_stats, partitions.
SELECT
    (SELECT coalesce(sum(input_rows), 0) FROM partitions)::BIGINT AS input_rows,
    (SELECT count(*) FROM samples WHERE status = 'success')::BIGINT AS success,
    (SELECT count(*) FROM samples WHERE status <> 'success')::BIGINT AS failed,
    (SELECT count(*) FROM samples WHERE status = 'failed_to_download')::BIGINT AS failed_to_download,
    (SELECT count(*) FROM samples WHERE status = 'failed_to_resize')::BIGINT AS failed_to_resize,
    (SELECT count(*) FROM rejects)::BIGINT AS rejected,
    (SELECT count(*) FROM shard_stats)::BIGINT AS shards,
    (SELECT count(*) FROM partitions)::BIGINT AS partitions,
    (SELECT coalesce(sum(n_shards), 0) FROM partitions)::BIGINT AS shards_planned;
