-- Rows kept by re-captioning (not dropped) whose final caption is missing or blank: must be zero.
SELECT
    count(*)::BIGINT AS rows,
    count(*) FILTER (WHERE caption_source <> 'dropped')::BIGINT AS kept,
    count(*) FILTER (WHERE caption_source <> 'dropped' AND coalesce(trim(final_caption), '') = '')::BIGINT
        AS empty_final
FROM fused_captions;
