-- Video accounting: every input row is rejected or in exactly one row sidecar; every clip of an accepted row is in
-- exactly one clip sidecar; keys are unique. Views: manifests(input_rows, accepted, clips) of the partitions whose
-- shards all finished, rejects, row_sidecars, clip_sidecars (pipelines/video/stats.py).
WITH per_row AS (
    SELECT input_file, input_row, count(*) AS n
    FROM (SELECT input_file, input_row FROM rejects UNION ALL SELECT input_file, input_row FROM row_sidecars)
    GROUP BY ALL
)
SELECT
    (SELECT coalesce(sum(input_rows), 0) FROM manifests)::BIGINT AS rows_expected,
    (SELECT count(*) FROM per_row)::BIGINT AS rows_accounted,
    (SELECT count(*) FROM per_row WHERE n > 1)::BIGINT AS rows_duplicated,
    (SELECT coalesce(sum(clips), 0) FROM manifests)::BIGINT AS clips_expected,
    (SELECT count(*) FROM clip_sidecars)::BIGINT AS clips_accounted,
    (SELECT count(*) - count(DISTINCT key) FROM clip_sidecars)::BIGINT AS duplicate_keys;
