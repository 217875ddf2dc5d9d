-- Download success rate over rows that reached img2dataset.
SELECT
    count(*)::BIGINT AS attempted,
    count(*) FILTER (WHERE status = 'success')::BIGINT AS success,
    coalesce(round(count(*) FILTER (WHERE status = 'success') / nullif(count(*), 0), 4), 0.0) AS success_rate
FROM samples;
