-- Caption length in words before fusion (raw alt-text, synthetic caption) and after it (final caption): how many
-- captions have each length. Blank or missing captions are left out. View: fused_captions.
SELECT kind, words, count(*)::BIGINT AS captions
FROM (
    SELECT 'raw' AS kind, len(regexp_split_to_array(trim(raw_caption), '\s+')) AS words
    FROM fused_captions WHERE coalesce(trim(raw_caption), '') <> ''
    UNION ALL
    SELECT 'synthetic' AS kind, len(regexp_split_to_array(trim(synthetic_caption), '\s+')) AS words
    FROM fused_captions WHERE coalesce(trim(synthetic_caption), '') <> ''
    UNION ALL
    SELECT 'final' AS kind, len(regexp_split_to_array(trim(final_caption), '\s+')) AS words
    FROM fused_captions WHERE coalesce(trim(final_caption), '') <> ''
)
GROUP BY ALL
ORDER BY kind, words;
