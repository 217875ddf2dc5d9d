-- Documents and image occurrences per outcome and reason (ingest: doc_outcomes/image_outcomes; curation: the
-- ledgers, exposed under the same view names by pipelines/documents/stats.py).
SELECT 'document' AS what, outcome, coalesce(reason, '') AS reason, count(*)::BIGINT AS n
FROM doc_outcomes GROUP BY ALL
UNION ALL
SELECT 'image' AS what, outcome, coalesce(reason, '') AS reason, count(*)::BIGINT AS n
FROM image_outcomes GROUP BY ALL
ORDER BY what, outcome, n DESC, reason;
