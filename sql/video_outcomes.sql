-- Video rows and clips per outcome: rows rejected before download (rejects), rows downloaded or failed (row
-- sidecars), clips ok or failed by reason (clip sidecars). Views: pipelines/video/stats.py.
SELECT 'row' AS what, 'rejected' AS outcome, reason, count(*)::BIGINT AS n FROM rejects GROUP BY ALL
UNION ALL
SELECT 'row' AS what, status AS outcome, coalesce(reason, '') AS reason, count(*)::BIGINT AS n FROM row_sidecars
GROUP BY ALL
UNION ALL
SELECT 'clip' AS what, status AS outcome, coalesce(reason, '') AS reason, count(*)::BIGINT AS n FROM clip_sidecars
GROUP BY ALL
ORDER BY what DESC, outcome DESC, n DESC, reason;
