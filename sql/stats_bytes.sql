-- Bytes on disk and per successful sample.
SELECT
    coalesce(sum(t.size), 0)::BIGINT AS tar_bytes,
    (SELECT count(*) FROM samples WHERE status = 'success')::BIGINT AS images,
    round(coalesce(sum(t.size), 0) / nullif((SELECT count(*) FROM samples WHERE status = 'success'), 0)) AS bytes_per_image
FROM tars t;
