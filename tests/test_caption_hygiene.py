"""Caption hygiene: cleaning, degenerate statuses, fallbacks and the caption_source ledger."""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipelines.caption.hygiene import HygieneConfig, caption_status, choose_final, clean_caption, finalize_captions

RAW = "Buy cheap RED shoes online 2024"
SYN = "a pair of red shoes on a white background"


def test_clean_caption_is_one_stripped_line():
    assert clean_caption("  A red shoe\non a\t table.\r\n ") == "A red shoe on a table."
    assert clean_caption(None) == ""


@pytest.mark.parametrize(
    ("fused", "status"),
    [
        ("A pair of cheap red shoes sold online in 2024.", "ok"),
        ("", "empty"),
        ("Sentence 1: Buy cheap RED shoes", "prompt_echo"),
        ("sentence 2: a pair of red shoes", "prompt_echo"),
        ("New Sentence: red shoes", "prompt_echo"),
        ("Red shoes. Please merge and refine the information", "prompt_echo"),
        ("red shoes red shoes red shoes red shoes on sale", "repetition"),
        ("shoes shoes shoes shoes", "repetition"),
        ("Red shoes!!!!!!!!!!!!", "repetition"),
        ("red red shoes, very very cheap", "ok"),
        ("A pair of cheap red leather shoes with white laces and rubber soles, photographed on a white background "
         "for an online shop that sells sneakers, boots and sandals at discount prices across Europe in 2024.",
         "too_long"),
        ("red shoes\x1a on sale", "non_printable"),
        ("red shoes \ufffd on sale", "non_printable"),
        ("red\u200bshoes", "non_printable"),
        ("A family \U0001F468\u200d\U0001F469\u200d\U0001F467 at the beach", "ok"),  # emoji ZWJ sequence
        ("a co\u00adoperative housing block", "ok"),  # soft hyphen
        ("a red heart \u2764\ufe0f sticker and a \u2764\ufe0e outline", "ok"),  # variation selectors
        ("the flag \U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F of Scotland", "ok"),
        ("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 a Persian word", "ok"),  # zero-width non-joiner
        ("red shoes\u202e on sale", "non_printable"),  # bidi override
        ("\ufeffred shoes", "non_printable"),
        ("red shoes\x07", "non_printable"),
    ],
)
def test_statuses(fused, status):
    assert caption_status(clean_caption(fused), RAW, SYN) == status


def test_too_long_threshold_is_configurable():
    fused = "A red shoe " * 10
    assert caption_status(fused.strip(), "shoe", "a shoe") == "repetition"
    long_ok = "A pair of cheap red leather shoes with white laces, sold online by a shop in London in 2024"
    assert caption_status(long_ok, "shoes", "a shoe") == "too_long"
    assert caption_status(long_ok, "shoes", "a shoe", HygieneConfig(max_length_ratio=20)) == "ok"


@pytest.mark.parametrize(
    ("fallback", "status", "raw", "syn", "want"),
    [
        ("raw", "ok", RAW, SYN, ("FUSED", "fused")),
        ("raw", "repetition", RAW, SYN, (RAW, "raw")),
        ("synthetic", "repetition", RAW, SYN, (SYN, "synthetic")),
        ("drop", "repetition", RAW, SYN, (None, "dropped")),
        ("raw", "empty", "", SYN, (SYN, "synthetic")),  # empty fallback text: the other input is used
        ("synthetic", "no_synthetic", RAW, "", (RAW, "raw")),
        ("raw", "empty", "", "", (None, "dropped")),
    ],
)
def test_fallbacks(fallback, status, raw, syn, want):
    assert choose_final(status, "FUSED", raw, syn, fallback) == want


def test_finalize_sets_ledger_columns_and_keeps_rows():
    table = pa.table({
        "key": ["a", "b", "c", "d", "e"],
        "raw_caption": [RAW, RAW, " x ", RAW, RAW],
        "synthetic_caption": [SYN, SYN, None, SYN, SYN],
        "captioner_status": ["ok", "ok", "ok", "image_error", "ok"],
        "fuser_status": ["ok", "ok", "no_synthetic", "ok", "generation_error"],
        "fused_caption": ["  Cheap red shoes\n on a white background. ", "Sentence 1: x", None, "fine text", None],
    })
    out = finalize_captions(table, HygieneConfig(fallback="synthetic"))
    assert out.num_rows == 5
    assert out.column("raw_caption").to_pylist() == [RAW, RAW, " x ", RAW, RAW]  # inputs stay as they were
    assert out.column("synthetic_caption").to_pylist() == [SYN, SYN, None, SYN, SYN]
    assert out.column("status").to_pylist() == ["ok", "prompt_echo", "no_synthetic", "image_error", "generation_error"]
    assert out.column("caption_source").to_pylist() == ["fused", "synthetic", "raw", "synthetic", "synthetic"]
    assert out.column("final_caption").to_pylist() == [
        "Cheap red shoes on a white background.", SYN, "x", SYN, SYN]
    assert out.column("fused_caption").to_pylist()[2] is None


def test_finalize_drop_fallback_leaves_final_empty():
    table = pa.table({"raw_caption": [RAW], "synthetic_caption": [SYN], "fused_caption": ["shoes shoes shoes shoes"]})
    out = finalize_captions(table, HygieneConfig(fallback="drop"))
    assert out.column("final_caption").to_pylist() == [None]
    assert out.column("caption_source").to_pylist() == ["dropped"]
    assert out.column("status").to_pylist() == ["repetition"]
