-- Dropped samples by stage and reason, most frequent first. $dropped: glob of OUT/dropped/*.parquet.
SELECT stage, reason, count(*) AS samples
FROM read_parquet($dropped)
GROUP BY stage, reason
ORDER BY samples DESC, stage, reason
