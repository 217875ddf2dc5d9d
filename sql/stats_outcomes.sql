-- Every input row's outcome: download status from the shard sidecars, or the pre-download reject reason.
SELECT outcome, detail, count(*)::BIGINT AS n
FROM (
    SELECT CASE WHEN status = 'success' THEN 'kept' ELSE 'failed' END AS outcome, status AS detail FROM samples
    UNION ALL
    SELECT 'rejected' AS outcome, reason AS detail FROM rejects
)
GROUP BY ALL
ORDER BY outcome, n DESC;
