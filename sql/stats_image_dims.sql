-- Width x height of the downloaded originals (before resizing), one row per distinct size with its count: the points
-- of the image size scatter. The most frequent 5000 sizes only, so a huge pool stays a small plot.
SELECT
    original_width AS width,
    original_height AS height,
    count(*)::BIGINT AS n
FROM samples
WHERE status = 'success' AND original_width > 0 AND original_height > 0
GROUP BY ALL
ORDER BY n DESC, width, height
LIMIT 5000;
