"""A captions folder as a person reads it: caption statuses and sources, and caption length before fusion (raw
alt-text, synthetic caption) and after it (final caption). Used by the caption assets and `tessera report`.

`part_ids` narrows everything to some parts (a Dagster partition's shards); None means every finished part.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.caption.jobs import caption_rows, part_counts
from pipelines.caption.parts import CAPTIONS_DIR, SYNTHETIC_DIR
from pipelines.stats.png import COLORS, integer_ticks, message_png, new_figure, to_png
from pipelines.stats.section import Figure, Section, Table

KINDS = {"raw": "raw alt-text", "synthetic": "synthetic caption", "final": "final caption (after fusion)"}
# Drawn final first, wide and pale, so the inputs stay visible where a final caption equals one of them.
KIND_STYLES = {"final": (COLORS["kept"], "-", 3.0, 0.45), "synthetic": (COLORS["start"], "--", 1.4, 1.0),
               "raw": (COLORS["rejected"], ":", 1.6, 1.0)}
MAX_WORDS_SHOWN = 60


def count_table(title: str, counts: dict[str, int], name: str) -> Table:
    """`name | rows | share` rows of a counter, largest first."""
    total = sum(counts.values())
    rows = [{name: k, "rows": n, "share": round(n / total, 4)} for k, n in
            sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return Table(title, rows, {name: name, "rows": "rows", "share": "share"})


def _quantile(lengths: dict[int, int], q: float) -> int:
    """The q-quantile (nearest rank) of a length -> count histogram."""
    total, seen = sum(lengths.values()), 0
    for words in sorted(lengths):
        seen += lengths[words]
        if seen >= q * total:
            return words
    return 0


def length_summary(rows: list[dict]) -> list[dict]:
    """Per kind of caption (raw, synthetic, final): how many, median, p95 and longest length in words."""
    out = []
    for kind, label in KINDS.items():
        lengths = {int(r["words"]): int(r["captions"]) for r in rows if r["kind"] == kind}
        if lengths:
            n = sum(lengths.values())
            mean = round(sum(w * c for w, c in lengths.items()) / n, 2)
            out.append({"caption": label, "captions": n, "mean_words": mean, "p50_words": _quantile(lengths, 0.5),
                        "p95_words": _quantile(lengths, 0.95), "max_words": max(lengths)})
    return out


def caption_length_plot(rows: list[dict]) -> bytes:
    """PNG: how many captions have each length in words, before fusion (raw, synthetic) and after (final)."""
    if not rows:
        return message_png("Caption length", "no fused captions yet")
    fig = new_figure(6.4, 3.4)
    ax = fig.add_subplot()
    for kind, (color, style, width, alpha) in KIND_STYLES.items():
        hist: dict[int, int] = {}
        for r in rows:
            if r["kind"] == kind:
                w = min(int(r["words"]), MAX_WORDS_SHOWN)
                hist[w] = hist.get(w, 0) + int(r["captions"])
        if hist:
            xs = list(range(0, max(hist) + 2))
            ax.step(xs, [hist.get(x, 0) for x in xs], where="mid", color=color, ls=style, lw=width, alpha=alpha,
                    label=KINDS[kind])
    ax.set_xlabel(f"words per caption (>= {MAX_WORDS_SHOWN} shown at {MAX_WORDS_SHOWN})")
    ax.set_ylabel("captions")
    integer_ticks(ax.yaxis)
    ax.set_title("Caption length before and after fusion", fontsize=10)
    ax.legend(fontsize=8)
    return to_png(fig)


def synthetic_section(root: Path, part_ids=None) -> Section:
    """Statuses of the synthetic captions (`root/synthetic/`)."""
    counts = part_counts(Path(root) / SYNTHETIC_DIR, part_ids)
    facts = {"parts": counts["parts"], "rows": counts["rows"]}
    tables = {"caption_status": count_table("Synthetic caption status", counts["statuses"], "status")}
    return Section("synthetic_captions", "Synthetic captions", Path(root), facts, tables, {})


def fused_section(root: Path, part_ids=None) -> Section:
    """Statuses, final caption sources and caption lengths of the fused captions (`root/captions/`)."""
    fused = Path(root) / CAPTIONS_DIR
    counts = part_counts(fused, part_ids)
    lengths = caption_rows(fused, "captions_lengths", part_ids)
    facts = {"parts": counts["parts"], "rows": counts["rows"]}
    tables = {
        "caption_status": count_table("Fused caption status (hygiene)", counts["statuses"], "status"),
        "caption_sources": count_table("Where the final caption came from", counts["caption_sources"], "source"),
        "caption_lengths": Table("Caption length in words", length_summary(lengths),
                                 {"caption": "caption", "captions": "captions", "mean_words": "mean words",
                                  "p50_words": "median words", "p95_words": "p95 words", "max_words": "max words"}),
    }
    figures = {"caption_length_plot": Figure("Caption length before and after fusion", caption_length_plot(lengths))}
    return Section("fused_captions", "Fused captions", Path(root), facts, tables, figures)


def captions_section(root: Path) -> Section:
    """Both caption phases of a captions folder, for the report (a phase that has not run is left out)."""
    root = Path(root)
    section = Section("captions", "Captions", root)
    if (root / SYNTHETIC_DIR).is_dir():
        syn = synthetic_section(root)
        section.facts["synthetic_rows"] = syn.facts["rows"]
        section.tables["synthetic_status"] = syn.tables["caption_status"]
    if (root / CAPTIONS_DIR).is_dir():
        fused = fused_section(root)
        section.facts["fused_rows"] = fused.facts["rows"]
        section.tables.update({f"fused_{k}" if k == "caption_status" else k: t for k, t in fused.tables.items()})
        section.figures.update(fused.figures)
    return section
