"""Caption hygiene: clean generated captions, flag degenerate ones, and pick each row's final caption.

Statuses are stable snake_case strings (GROUP BY keys). `finalize_captions` writes `final_caption`,
`caption_source` (which text was used: `fused`, `raw`, `synthetic`, or `dropped`) and `status`.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

STATUS_OK = "ok"
STATUS_EMPTY = "empty"
STATUS_PROMPT_ECHO = "prompt_echo"
STATUS_REPETITION = "repetition"
STATUS_TOO_LONG = "too_long"
STATUS_NON_PRINTABLE = "non_printable"
# Upstream failures, set by the stages before hygiene runs.
STATUS_IMAGE_ERROR = "image_error"
STATUS_GENERATION_ERROR = "generation_error"
STATUS_NO_SYNTHETIC = "no_synthetic"
DEGENERATE_STATUSES = (STATUS_EMPTY, STATUS_PROMPT_ECHO, STATUS_REPETITION, STATUS_TOO_LONG, STATUS_NON_PRINTABLE)

SOURCE_FUSED = "fused"
SOURCE_RAW = "raw"
SOURCE_SYNTHETIC = "synthetic"
SOURCE_DROPPED = "dropped"

Fallback = Literal["raw", "synthetic", "drop"]

_ECHO = re.compile(r"^\s*(sentence\s*[12]\s*:|new\s+sentence\s*:)|please merge and refine", re.IGNORECASE)
_CHAR_LOOP = re.compile(r"(\S{1,8}?)\1{7,}")
_WORD = re.compile(r"\w+", re.UNICODE)


class HygieneConfig(BaseModel):
    """Thresholds for degenerate output and the fallback used when the fused caption is degenerate."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    fallback: Fallback = "raw"
    max_length_ratio: float = Field(3.0, gt=0)  # longer than this times the longer input is degenerate...
    length_slack_chars: int = Field(40, ge=0)  # ...plus this many characters, so short inputs are not punished
    min_repeats: int = Field(3, ge=2)  # an n-gram (n >= 2) repeated back to back this often is a loop
    min_unique_ratio: float = Field(0.3, ge=0, le=1)  # for texts of 12+ words


def clean_caption(text: str | None) -> str:
    """Strip and collapse all whitespace (newlines included) to single spaces: one line."""
    return " ".join((text or "").split())


# Format (Cf) characters that belong in ordinary text: soft hyphen, (non-)joiners used by emoji ZWJ sequences and
# Indic/Persian scripts, direction marks of RTL text, word joiner, and the emoji tag characters of subdivision flags.
# Zero-width space, BOM and bidi overrides/isolates stay flagged. Variation selectors are Mn, not Cf, so they pass.
_HARMLESS_FORMAT = frozenset("\u00ad\u061c\u200c\u200d\u200e\u200f\u2060") | {chr(c) for c in range(0xE0020, 0xE0080)}


def _non_printable(text: str) -> bool:
    return any(
        ch == "\ufffd"
        or (unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs", "Cn") and ch not in _HARMLESS_FORMAT)
        for ch in text
    )


def _has_loop(text: str, cfg: HygieneConfig) -> bool:
    if _CHAR_LOOP.search(text):
        return True
    words = [w.lower() for w in _WORD.findall(text)]
    for n in range(1, 7):
        need = cfg.min_repeats + (1 if n == 1 else 0)  # "very very" is fine, "the the the the" is not
        for start in range(0, len(words) - n * need + 1):
            gram = words[start : start + n]
            if all(words[start + k * n : start + (k + 1) * n] == gram for k in range(1, need)):
                return True
    return len(words) >= 12 and len(set(words)) / len(words) < cfg.min_unique_ratio


def caption_status(fused: str, raw: str, synthetic: str, cfg: HygieneConfig | None = None) -> str:
    """`ok` or the first degenerate status that applies to a cleaned fused caption."""
    cfg = cfg or HygieneConfig()
    if not fused:
        return STATUS_EMPTY
    if _ECHO.search(fused):
        return STATUS_PROMPT_ECHO
    if _non_printable(fused):
        return STATUS_NON_PRINTABLE
    if _has_loop(fused, cfg):
        return STATUS_REPETITION
    if len(fused) > cfg.max_length_ratio * max(len(raw), len(synthetic)) + cfg.length_slack_chars:
        return STATUS_TOO_LONG
    return STATUS_OK


def _column(table: pa.Table, name: str) -> list:
    return table.column(name).to_pylist() if name in table.column_names else [None] * table.num_rows


def choose_final(status: str, fused: str, raw: str, synthetic: str, fallback: Fallback) -> tuple[str | None, str]:
    """(final caption, caption source): the fused caption when ok, else the fallback's text (the other input when
    that one is empty), else dropped; `drop` never falls back."""
    if status == STATUS_OK:
        return fused, SOURCE_FUSED
    order = {"raw": ((raw, SOURCE_RAW), (synthetic, SOURCE_SYNTHETIC)),
             "synthetic": ((synthetic, SOURCE_SYNTHETIC), (raw, SOURCE_RAW))}.get(fallback, ())
    return next(((text, source) for text, source in order if text), (None, SOURCE_DROPPED))


def finalize_captions(table: pa.Table, cfg: HygieneConfig | None = None) -> pa.Table:
    """Clean `fused_caption`, set `status`, `final_caption` and `caption_source`; rows are never removed.

    `raw_caption` and `synthetic_caption` are inputs and stay as they are; a fallback final caption is their
    cleaned text. An upstream `captioner_status` / `fuser_status` other than `ok` wins over the hygiene verdict.
    """
    cfg = cfg or HygieneConfig()
    raws = [clean_caption(x) for x in _column(table, "raw_caption")]
    syns = [clean_caption(x) for x in _column(table, "synthetic_caption")]
    fused_in = _column(table, "fused_caption")
    fused = [clean_caption(x) for x in fused_in]
    upstream = zip(_column(table, "captioner_status"), _column(table, "fuser_status"))
    statuses, finals, sources = [], [], []
    for raw, syn, fus, (cap_st, fus_st) in zip(raws, syns, fused, upstream):
        if cap_st not in (None, STATUS_OK):
            status = cap_st
        elif fus_st not in (None, STATUS_OK):
            status = fus_st
        else:
            status = caption_status(fus, raw, syn, cfg)
        final, source = choose_final(status, fus, raw, syn, cfg.fallback)
        statuses.append(status)
        finals.append(final)
        sources.append(source)
    out = table
    for name, values in (
        ("fused_caption", [None if x is None else f for x, f in zip(fused_in, fused)]),
        ("final_caption", finals),
        ("caption_source", sources),
        ("status", statuses),
    ):
        col = pa.array(values, pa.string())
        idx = out.schema.get_field_index(name)
        out = out.set_column(idx, name, col) if idx >= 0 else out.append_column(name, col)
    return out
