"""Read-side summary of a `tessera curate` output folder, from the SQL in sql/curate_*.sql (DuckDB).

`tessera stats OUT` calls `curate_stats(OUT)` when OUT holds a curated/ folder; the asset checks use the same SQL.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.curate.selection import CURATED_DIR, DROPPED_DIR, SUMMARY_FILE, pool_inputs
from pipelines.curate.scoring import SCORES_DIR
from pipelines.core.errors import TesseraUserError
from pipelines.core.shard_io import read_json
from pipelines.core.sql import sql_text


def is_curate_output(out: Path) -> bool:
    """True when `out` looks like a `tessera curate` output folder."""
    return (Path(out) / CURATED_DIR).is_dir()


def query(sql_name: str, **params) -> list[dict]:
    """Run sql/<sql_name>.sql with `$name` parameters through DuckDB; rows as dicts."""
    import duckdb

    with duckdb.connect() as con:
        rel = con.sql(sql_text(sql_name), params=params)
        cols = rel.columns
        return [dict(zip(cols, row)) for row in rel.fetchall()]


def score_range(out: Path) -> dict:
    """Counts of scored, NaN and out-of-range CLIP scores (sql/curate_score_range.sql)."""
    return query("curate_score_range", scores=str(Path(out) / SCORES_DIR / "*.parquet"))[0]


def invariant(out: Path, ingest_out: Path) -> dict:
    """Missing / duplicated / unknown keys between the ingest successes of the shards the selection covered (the
    scored ones, as recorded in curate_stats.json) and curated + dropped; `unscored_shards` counts the finished
    ingest shards left out."""
    from pipelines.core.shards import complete_shards

    summary = read_json(Path(out) / SUMMARY_FILE, default={})
    covered = set(summary["shards"]) if "shards" in summary else set(pool_inputs(ingest_out, out).shard_ids)
    shards = complete_shards(ingest_out)
    sidecars = [str(s.parquet) for s in shards if s.shard_id in covered]
    result = query("curate_invariant", sidecars=sidecars, curated=str(Path(out) / CURATED_DIR / "*.parquet"),
                   dropped=str(Path(out) / DROPPED_DIR / "*.parquet"))[0]
    return {**result, "shards": len(sidecars), "unscored_shards": len(shards) - len(sidecars)}


def curate_stats(out: Path) -> dict:
    """Kept/dropped totals, drops by stage and reason, score sanity and (when the ingest folder is still there)
    the curated/dropped invariant."""
    out = Path(out)
    if not is_curate_output(out):
        raise TesseraUserError(f"{out} is not a curate output folder (no {CURATED_DIR}/ inside)")
    summary = read_json(out / SUMMARY_FILE, default={})
    totals = query("curate_kept_dropped", curated=str(out / CURATED_DIR / "*.parquet"),
                   dropped=str(out / DROPPED_DIR / "*.parquet"))[0]
    by_reason = query("curate_by_reason", dropped=str(out / DROPPED_DIR / "*.parquet"))
    total = totals["kept"] + totals["dropped"]
    stats = {
        "kind": "curate",
        "preset": summary.get("preset"),
        "model": summary.get("model"),
        "unscored_shards": summary.get("unscored_shards", []),
        "kept": totals["kept"],
        "dropped": totals["dropped"],
        "keep_rate": round(totals["kept"] / total, 6) if total else None,
        "dropped_by_reason": [{"stage": r["stage"], "reason": r["reason"], "samples": r["samples"]} for r in by_reason],
        "scores": score_range(out) if any((out / SCORES_DIR).glob("*.parquet")) else None,
    }
    ingest_out = summary.get("ingest_out")
    if ingest_out and (Path(ingest_out) / "shards").is_dir():
        inv = invariant(out, Path(ingest_out))
        stats["invariant"] = {**inv, "ok": inv["missing"] == inv["duplicated"] == inv["unknown"] == 0}
    return stats


def keep_rate_in_band(summary: dict) -> bool:
    """True when the selection's keep rate lies inside the band recorded with it (no band recorded: any rate)."""
    rate = summary.get("keep_rate")
    low, high = summary.get("keep_rate_band") or (0.0, 1.0)
    return rate is not None and low <= rate <= high


def keep_rate_warning(summary: dict) -> str | None:
    """One sentence when a selection summary's keep rate falls outside its band; None inside it."""
    if keep_rate_in_band(summary):
        return None
    low, high = summary.get("keep_rate_band") or (0.0, 1.0)
    rate = summary.get("keep_rate")
    said = "no samples were selected, so the keep rate" if rate is None else f"keep rate {rate:.1%}"
    return (f"{said} is outside the band {low * 100:g}%-{high * 100:g}% expected of preset {summary.get('preset')}; "
            "check the CLIP model, thresholds and input (docs/curate.md, keep-rate bands)")
