-- Why downloads failed: the stable reason that starts every message of Tessera's fetch layer ("<reason>: detail",
-- see docs/download.md); other messages (decode errors from img2dataset's resizer) count as 'other'.
SELECT
    status,
    CASE WHEN regexp_matches(error_message, '^[a-z_]+: ') THEN split_part(error_message, ':', 1) ELSE 'other' END
        AS reason,
    count(*)::BIGINT AS n
FROM samples
WHERE status <> 'success'
GROUP BY ALL
ORDER BY n DESC, reason;
