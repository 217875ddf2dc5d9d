-- Heavy atoms per kept molecule: count, range, mean and quantiles. View: shards (pipelines/molecules/stats.py).
SELECT
    count(*)::BIGINT AS molecules,
    min(num_atoms)::BIGINT AS min_atoms,
    quantile_disc(num_atoms, 0.5)::BIGINT AS p50_atoms,
    round(avg(num_atoms), 2)::DOUBLE AS mean_atoms,
    quantile_disc(num_atoms, 0.95)::BIGINT AS p95_atoms,
    max(num_atoms)::BIGINT AS max_atoms,
    coalesce(sum(num_atoms), 0)::BIGINT AS total_atoms
FROM shards;
