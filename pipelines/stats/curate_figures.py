"""A curate folder as a person reads it: preset, CLIP model, keep rate against the preset's band, drops by stage and
reason, and the CLIP score histogram with the preset's threshold. Used by `curated_selection` and `tessera report`.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.core.shard_io import read_json
from pipelines.curate.scoring import SCORES_DIR
from pipelines.curate.selection import CURATED_DIR, DROPPED_DIR, SUMMARY_FILE
from pipelines.curate.stats import keep_rate_in_band, query
from pipelines.stats.png import COLORS, message_png, new_figure, to_png
from pipelines.stats.section import Figure, Section, Table, band_text

HISTOGRAM_BINS = 40


def score_histogram(out: Path, shards: list[str] | None = None, bins: int = HISTOGRAM_BINS) -> list[dict]:
    """Rows of sql/curate_score_histogram.sql over the selected shards' scores (`shards`, default: every scored
    shard): bin, lo, hi, samples, kept."""
    out = Path(out)
    files = [out / SCORES_DIR / f"{s}.parquet" for s in shards] if shards else sorted(
        (out / SCORES_DIR).glob("*.parquet"))
    files = [str(f) for f in files if f.is_file()]
    if not files or not any((out / CURATED_DIR).glob("*.parquet")):
        return []
    return query("curate_score_histogram", scores=files, curated=str(out / CURATED_DIR / "*.parquet"), bins=bins)


def clip_score_histogram(hist: list[dict], threshold: float | None, preset: str | None,
                         bins: int = HISTOGRAM_BINS) -> bytes:
    """PNG: kept and dropped samples per CLIP score bin, with the preset's threshold as a vertical line."""
    if not hist:
        return message_png("CLIP scores", "no scored samples in the selection")
    lo, hi = float(hist[0]["lo"]), float(hist[0]["hi"])
    width = (hi - lo) / bins if hi > lo else 0.01
    lefts = [lo + int(r["bin"]) * width for r in hist]
    kept = [int(r["kept"]) for r in hist]
    dropped = [int(r["samples"]) - k for r, k in zip(hist, kept)]
    fig = new_figure(6.4, 3.4)
    ax = fig.add_subplot()
    ax.bar(lefts, kept, width=width, align="edge", color=COLORS["kept"], label="kept")
    ax.bar(lefts, dropped, width=width, align="edge", bottom=kept, color=COLORS["other"], label="dropped")
    if threshold is not None:
        ax.axvline(threshold, color=COLORS["failed"], ls="--", lw=1.2, label=f"threshold {threshold:.4g}")
        ax.set_xlim(min(lo, threshold) - width, max(lo + bins * width, threshold) + width)
        note = f"preset {preset}"
    else:
        note = f"preset {preset} has no CLIP threshold"
    ax.set_xlabel("CLIP image-text cosine")
    ax.set_ylabel("samples")
    ax.set_title(f"CLIP scores of {sum(int(r['samples']) for r in hist):,} samples ({note})", fontsize=10)
    ax.legend(fontsize=8)
    return to_png(fig)


def curate_section(out: Path) -> Section:
    """Facts, the drop table and the score histogram of a curate folder (after a selection ran)."""
    out = Path(out)
    summary = read_json(out / SUMMARY_FILE, default={})
    totals = query("curate_kept_dropped", curated=str(out / CURATED_DIR / "*.parquet"),
                   dropped=str(out / DROPPED_DIR / "*.parquet"))[0]
    kept, dropped = int(totals["kept"]), int(totals["dropped"])
    rate = round(kept / (kept + dropped), 6) if kept + dropped else None
    band = summary.get("keep_rate_band")
    facts = {
        "preset": summary.get("preset") or "", "clip_model": summary.get("model") or "",
        "samples": kept + dropped, "kept": kept, "dropped": dropped, "keep_rate": rate,
        "keep_rate_band": band_text(band), "keep_rate_in_band": keep_rate_in_band({**summary, "keep_rate": rate}),
    }
    if summary.get("clip_threshold") is not None:  # presets without a CLIP filter have none
        facts["clip_threshold"] = summary["clip_threshold"]
    reasons = query("curate_by_reason", dropped=str(out / DROPPED_DIR / "*.parquet"))
    tables = {"drop_reasons": Table("Dropped samples by stage and reason", reasons,
                                    {"stage": "stage", "reason": "reason", "samples": "samples"})}
    hist = score_histogram(out, summary.get("shards"))
    figures = {"clip_score_histogram": Figure(
        "CLIP score histogram", clip_score_histogram(hist, summary.get("clip_threshold"), summary.get("preset")))}
    return Section("curate", "Curation", out, facts, tables, figures)
