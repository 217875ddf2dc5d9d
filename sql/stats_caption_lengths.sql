-- Caption length distribution (characters and words) over all rows that reached download.
SELECT
    count(*)::BIGINT AS captions,
    count(*) FILTER (WHERE caption IS NULL OR trim(caption) = '')::BIGINT AS empty,
    min(length(caption)) AS min_chars,
    quantile_cont(length(caption), 0.5) AS p50_chars,
    quantile_cont(length(caption), 0.95) AS p95_chars,
    max(length(caption)) AS max_chars,
    quantile_cont(len(string_split(trim(caption), ' ')), 0.5) AS p50_words
FROM samples;
