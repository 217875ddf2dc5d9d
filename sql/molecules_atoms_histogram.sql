-- Kept molecules per bucket of 8 heavy atoms ([1, 8], [9, 16], ...). View: shards (pipelines/molecules/stats.py).
SELECT ((num_atoms - 1) // 8) * 8 + 1 AS atoms_from, ((num_atoms - 1) // 8 + 1) * 8 AS atoms_to,
       count(*)::BIGINT AS molecules
FROM shards
GROUP BY ALL
ORDER BY atoms_from;
