-- Molecule accounting: every input record of a finished partition is in exactly one ledger row; every kept ledger
-- row is one shard row and every shard row one kept ledger row; keys (InChIKeys) are unique among kept molecules.
-- Views: manifests(name, input_rows, accepted), ledgers, shards (pipelines/molecules/stats.py).
WITH per_record AS (
    SELECT input_file, input_row, count(*) AS n FROM ledgers GROUP BY ALL
), kept AS (
    SELECT input_file, input_row, key FROM ledgers WHERE status = 'kept'
)
SELECT
    (SELECT coalesce(sum(input_rows), 0) FROM manifests)::BIGINT AS records_expected,
    (SELECT count(*) FROM per_record)::BIGINT AS records_accounted,
    (SELECT count(*) FROM per_record WHERE n > 1)::BIGINT AS records_duplicated,
    (SELECT count(*) FROM kept)::BIGINT AS kept,
    (SELECT count(*) FROM shards)::BIGINT AS shard_rows,
    (SELECT count(*) FROM kept ANTI JOIN shards USING (input_file, input_row, key))::BIGINT
        AS kept_missing_from_shards,
    (SELECT count(*) FROM shards ANTI JOIN kept USING (input_file, input_row, key))::BIGINT AS shard_rows_not_kept,
    (SELECT count(*) - count(DISTINCT key) FROM shards)::BIGINT AS duplicate_keys;
