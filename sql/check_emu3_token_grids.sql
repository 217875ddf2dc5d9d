-- Emu3 token shards: every row's code list has exactly h*w codes, each inside the 32768-entry codebook.
-- Returns one row; the check passes when bad_length = 0 and out_of_range = 0.
SELECT
    count(*)::BIGINT AS rows,
    count(*) FILTER (WHERE len(codes) <> h * w)::BIGINT AS bad_length,
    count(*) FILTER (WHERE list_min(codes) < 0 OR list_max(codes) >= 32768)::BIGINT AS out_of_range
FROM tokens;
