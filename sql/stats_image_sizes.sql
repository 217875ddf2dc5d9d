-- Size of the downloaded originals (before resizing), successful samples only.
SELECT
    bucket,
    count(*)::BIGINT AS n,
    min(short_side) AS min_short,
    max(short_side) AS max_short,
    round(median(aspect), 2) AS median_aspect
FROM (
    SELECT
        least(original_width, original_height) AS short_side,
        greatest(original_width, original_height) / nullif(least(original_width, original_height), 0) AS aspect,
        CASE
            WHEN least(original_width, original_height) < 200 THEN '1: < 200 px'
            WHEN least(original_width, original_height) < 512 THEN '2: 200-511 px'
            WHEN least(original_width, original_height) < 1024 THEN '3: 512-1023 px'
            ELSE '4: >= 1024 px'
        END AS bucket
    FROM samples
    WHERE status = 'success'
)
GROUP BY bucket
ORDER BY bucket;
