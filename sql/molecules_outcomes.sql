-- Molecule records per outcome: kept, or dropped by reason (unparsable, sanitization_error, too_many_atoms,
-- duplicate_inchikey, embedding_failed, featurization_error). View: ledgers (pipelines/molecules/stats.py).
SELECT status, coalesce(reason, '') AS reason, count(*)::BIGINT AS n
FROM ledgers
GROUP BY ALL
ORDER BY status DESC, n DESC, reason;
