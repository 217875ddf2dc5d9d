-- Kept molecules per conformer method (sdf, etkdg_mmff, etkdg_uff, etkdg, random_mmff, random_uff, random, none).
-- View: shards (pipelines/molecules/stats.py).
SELECT conformer_method, count(*)::BIGINT AS n FROM shards GROUP BY ALL ORDER BY n DESC, conformer_method;
