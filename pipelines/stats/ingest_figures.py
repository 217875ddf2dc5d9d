"""The ingest folder as a person reads it: outcome, failure, size and caption tables, the outcome waterfall (input
rows -> rejected -> failed by reason -> kept) and the image size scatter. Used by `shard_stats` and `tessera report`.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.core.accounting import accounting_holds
from pipelines.stats.ingest_stats import ingest_stats, run_query
from pipelines.stats.png import COLORS, message_png, new_figure, to_png
from pipelines.stats.section import Figure, Section, Table

MAX_STEPS_PER_KIND = 8
# Short sides that later stages care about: DataComp/COYO filters (200 px) and Emu3 tokenization (512 px).
SIZE_MARKS = ((200, "200 px (DataComp/COYO minimum)"), (512, "512 px (Emu3 minimum)"))


def _fold(counts: dict[str, int], kind: str) -> list[dict]:
    """One step per reason, the smallest folded into one step when there are more than MAX_STEPS_PER_KIND."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    steps = [{"label": f"{kind}: {reason}", "kind": kind, "n": -n} for reason, n in ranked[:MAX_STEPS_PER_KIND]]
    rest = ranked[MAX_STEPS_PER_KIND:]
    if rest:
        steps.append({"label": f"{kind}: {len(rest)} other reasons", "kind": kind, "n": -sum(n for _, n in rest)})
    return steps


def waterfall_steps(stats: dict) -> list[dict]:
    """Bars of the outcome waterfall: the input rows, each reject and failure reason taken away, then the kept
    images; a gap between the partitions' input rows and the recorded outcomes shows as `unaccounted`."""
    rejected: dict[str, int] = {}
    for r in stats["outcomes"]:
        if r["outcome"] == "rejected":
            rejected[r["detail"]] = rejected.get(r["detail"], 0) + int(r["n"])
    failed: dict[str, int] = {}
    for r in stats["fail_reasons"]:
        failed[r["reason"]] = failed.get(r["reason"], 0) + int(r["n"])
    accounted = sum(rejected.values()) + sum(failed.values()) + int(stats["success"])
    start = int(stats["input_rows"]) or accounted  # folders without partition manifests: the recorded rows
    steps = [{"label": "input rows", "kind": "start", "n": start}]
    steps += _fold(rejected, "rejected") + _fold(failed, "failed")
    if start != accounted:
        steps.append({"label": "unaccounted", "kind": "other", "n": accounted - start})
    steps.append({"label": "kept", "kind": "kept", "n": int(stats["success"])})
    return steps


def outcome_waterfall(stats: dict) -> bytes:
    """PNG: a horizontal waterfall from the input rows down to the kept images."""
    steps = waterfall_steps(stats)
    fig = new_figure(6.8, 1.2 + 0.32 * len(steps))
    ax = fig.add_subplot()
    level = 0
    for i, step in enumerate(steps):
        if step["kind"] in ("start", "kept"):
            left, width, level = 0, step["n"], step["n"]
        else:
            left, width = level + min(step["n"], 0), abs(step["n"])
            level += step["n"]
        ax.barh(i, width, left=left, color=COLORS.get(step["kind"], COLORS["other"]))
        ax.annotate(f"{step['n']:+,}" if step["kind"] not in ("start", "kept") else f"{step['n']:,}",
                    (left + width, i), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
    ax.set_yticks(range(len(steps)), [s["label"] for s in steps], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("rows")
    ax.margins(x=0.12)
    ax.set_title("Where every input row went", fontsize=10)
    return to_png(fig)


def image_size_scatter(dims: list[dict]) -> bytes:
    """PNG: width x height of the downloaded originals, marker area growing with the number of images."""
    if not dims:
        return message_png("Image sizes", "no successful downloads yet")
    fig = new_figure(5.6, 4.2)
    ax = fig.add_subplot()
    sizes = [12 + 6 * int(r["n"]) ** 0.5 for r in dims]
    ax.scatter([r["width"] for r in dims], [r["height"] for r in dims], s=sizes, alpha=0.5,
               color=COLORS["start"], edgecolors="none")
    for px, label in SIZE_MARKS:
        ax.axvline(px, color="grey", lw=0.8, ls="--")
        ax.axhline(px, color="grey", lw=0.8, ls="--")
        ax.annotate(label, (px, px), xytext=(3, 3), textcoords="offset points", fontsize=7, color="grey")
    _pixel_axes(ax)
    ax.set_xlabel("original width (px)")
    ax.set_ylabel("original height (px)")
    ax.set_title(f"Image sizes ({sum(int(r['n']) for r in dims):,} images)", fontsize=10)
    return to_png(fig)


def _pixel_axes(ax) -> None:
    """Log axes ticked at powers of two in plain pixels (not 2x10^2)."""
    from matplotlib.ticker import NullFormatter

    ticks = [2 ** k for k in range(4, 15)]
    for axis, set_scale in ((ax.xaxis, ax.set_xscale), (ax.yaxis, ax.set_yscale)):
        set_scale("log")
        ax.autoscale_view()
        low, high = sorted(axis.get_view_interval())
        shown = [t for t in ticks if low <= t <= high]
        if shown:
            axis.set_ticks(shown, [str(t) for t in shown])
        axis.set_minor_formatter(NullFormatter())


def ingest_section(out: Path, stats: dict | None = None) -> Section:
    """Facts, tables and figures of an ingest folder (`stats`: a precomputed `ingest_stats(out)`)."""
    stats = stats if stats is not None else ingest_stats(out)
    bytes_ = stats["bytes"]
    facts = {"accounting": "holds" if accounting_holds([stats["accounting"]]) else "BROKEN",
             **{k: stats[k] for k in ("input_rows", "success", "failed", "rejected", "shards")}}
    facts.update(success_rate=float(stats["success_rate"]), tar_bytes=int(bytes_["tar_bytes"]),
                 bytes_per_image=float(bytes_["bytes_per_image"] or 0.0))
    rows = {"n": "rows"}
    tables = {
        "outcomes": Table("Outcome of every input row", stats["outcomes"],
                          {"outcome": "outcome", "detail": "detail", **rows}),
        "fail_reasons": Table("Why downloads failed", stats["fail_reasons"],
                              {"status": "status", "reason": "reason", **rows}),
        "error_classes": Table("Download error classes (messages folded)", stats["errors"],
                               {"status": "status", "error_class": "error class", **rows}),
        "image_sizes": Table("Short side of the downloaded originals", stats["image_sizes"],
                             {"bucket": "short side", "n": "images", "min_short": "min px", "max_short": "max px",
                              "median_aspect": "median aspect"}),
        "caption_lengths": Table("Caption lengths (rows that reached download)", [stats["caption_lengths"]],
                                 {"captions": "captions", "empty": "empty", "min_chars": "min chars",
                                  "p50_chars": "median chars", "p95_chars": "p95 chars", "max_chars": "max chars",
                                  "p50_words": "median words"}),
    }
    figures = {
        "outcome_waterfall": Figure("Outcome waterfall", outcome_waterfall(stats)),
        "image_size_scatter": Figure("Image size scatter", image_size_scatter(run_query(out, "stats_image_dims"))),
    }
    return Section("ingest", "Ingest", Path(out), facts, tables, figures)
