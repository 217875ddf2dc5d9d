-- Download error classes: messages with object addresses, URLs and long numbers folded, so alike errors group.
SELECT
    status,
    left(
        regexp_replace(
            regexp_replace(regexp_replace(error_message, '<[^>]*>', '<...>', 'g'), 'https?://\S+', '<url>', 'g'),
            '\d{5,}', '<n>', 'g'),
        100) AS error_class,
    count(*)::BIGINT AS n
FROM samples
WHERE status <> 'success'
GROUP BY ALL
ORDER BY n DESC, error_class
LIMIT 20;
