-- Emu3 code grids by size: how many images were tokenized into each h x w grid (h * w image tokens each).
-- View: tokens (the finished OUT/emu3_tokens/NNNNN.parquet shards).
SELECT h, w, (h * w)::BIGINT AS tokens, count(*)::BIGINT AS images
FROM tokens
GROUP BY ALL
ORDER BY tokens, h, w;
