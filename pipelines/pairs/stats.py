"""The pair track's `tessera stats` section and outcome views: an ingest folder (shards/) or a pair curation folder
(curated/ plus curate_stats.json)."""

from __future__ import annotations

from pathlib import Path

from pipelines.core import schema as S
from pipelines.core.accounting import define_levels
from pipelines.curate.selection import CURATED_DIR, SUMMARY_FILE
from pipelines.stats.ingest_views import pair_outcome_views as ingest_outcome_views


def _is_ingest(out: Path) -> bool:
    return (Path(out) / S.SHARDS_DIR).is_dir()


def has_pairs(out: Path) -> bool:
    """True when `out` is an ingest folder with pair shards or a pair curation folder."""
    out = Path(out)
    return _is_ingest(out) or ((out / CURATED_DIR).is_dir() and (out / SUMMARY_FILE).exists())


def pair_stats(out: Path) -> dict:
    """The pair section: `ingest_stats` of an ingest folder, `curate_stats` of a curation folder (with the
    headline counts: input = kept + dropped, success = kept, rejected = dropped)."""
    if _is_ingest(out):
        from pipelines.stats.ingest_stats import ingest_stats

        return ingest_stats(out)
    from pipelines.curate.stats import curate_stats

    stats = curate_stats(out)
    shards = len(list((Path(out) / CURATED_DIR).glob("*.parquet")))
    return {"input_rows": stats["kept"] + stats["dropped"], "success": stats["kept"], "failed": 0,
            "rejected": stats["dropped"], "shards": shards, **stats}


def pair_outcome_views(con, out: Path) -> None:
    """Level `rows` of an ingest folder (a curation folder has its own invariant in the section, no level)."""
    if _is_ingest(out):
        ingest_outcome_views(con, out)
    else:
        define_levels(con, {})

