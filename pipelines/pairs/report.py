"""The pair track's report stages: ingest, curate, captions and tokens, each recognised by what it writes."""

from __future__ import annotations

from pathlib import Path

from pipelines.caption.parts import CAPTIONS_DIR, SYNTHETIC_DIR
from pipelines.core import schema as S
from pipelines.curate.selection import CURATED_DIR, DROPPED_DIR
from pipelines.stats.caption_figures import captions_section
from pipelines.stats.curate_figures import curate_section
from pipelines.stats.html_report import ReportStage
from pipelines.stats.ingest_figures import ingest_section
from pipelines.stats.token_figures import tokens_section
from pipelines.tokenize.shards import TOKENS_DIR


def _is_captions(p: Path) -> bool:
    # A root also has a captions/ child, but of folders; a captions stage folder has parts (or synthetic/) in it.
    return (p / SYNTHETIC_DIR).is_dir() or any((p / CAPTIONS_DIR).glob("*_stats.json"))


REPORT_STAGES = (
    ReportStage("ingest", lambda p: (p / S.SHARDS_DIR).is_dir(), ingest_section),
    # curated/ and dropped/: the other tracks' curate folders have a curated/ too, but no dropped/.
    ReportStage("curate", lambda p: (p / CURATED_DIR).is_dir() and (p / DROPPED_DIR).is_dir(), curate_section),
    ReportStage("captions", _is_captions, captions_section),
    ReportStage("tokens", lambda p: (p / TOKENS_DIR).is_dir(), tokens_section),
)
