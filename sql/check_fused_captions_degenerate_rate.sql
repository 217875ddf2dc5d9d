-- Share of generated (fused) captions that hygiene flagged as degenerate.
SELECT
    count(*) FILTER (WHERE fused_caption IS NOT NULL)::BIGINT AS generated,
    count(*) FILTER (WHERE status IN ('empty', 'prompt_echo', 'repetition', 'too_long', 'non_printable'))::BIGINT
        AS degenerate,
    coalesce(round(
        count(*) FILTER (WHERE status IN ('empty', 'prompt_echo', 'repetition', 'too_long', 'non_printable'))
        / nullif(count(*) FILTER (WHERE fused_caption IS NOT NULL), 0), 4), 0.0) AS degenerate_rate
FROM fused_captions;
