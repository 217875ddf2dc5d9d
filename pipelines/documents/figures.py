"""Documents as a person reads them: where every document and image occurrence went (facts, a table, and one bar
chart per kind), for `tessera report` and the document asset pages. Ingest and curation folders both work."""

from __future__ import annotations

from pathlib import Path

from pipelines.core.accounting import accounting_holds, track_accounting
from pipelines.documents.stats import document_outcome_views, document_stats
from pipelines.stats.png import COLORS, label_bars, message_png, new_figure, to_png
from pipelines.stats.section import Figure, Section, Table

BAR_COLORS = {"kept": COLORS["kept"], "downloaded": COLORS["kept"], "success": COLORS["kept"], "failed": COLORS["failed"],
              "dropped": COLORS["failed"], "rejected": COLORS["rejected"], "skipped": "#9e9e9e"}


def outcome_plot(rows: list[dict], what: str) -> bytes:
    """PNG: horizontal bars, one per (outcome, reason), coloured by outcome."""
    rows = [r for r in rows if r["what"] == what]
    if not rows:
        return message_png(f"{what.capitalize()}s per outcome", "nothing recorded yet")
    labels = [r["outcome"] + (f": {r['reason']}" if r["reason"] else "") for r in rows]
    counts = [int(r["n"]) for r in rows]
    fig = new_figure(6.4, 0.45 + 0.28 * len(rows))
    ax = fig.add_subplot()
    bars = ax.barh(labels[::-1], counts[::-1], color=[BAR_COLORS.get(r["outcome"], "#607d8b") for r in rows][::-1])
    label_bars(ax, bars, counts[::-1])
    ax.set_xlabel("image occurrences" if what == "image" else f"{what}s")
    ax.set_title(f"{what.capitalize()}s per outcome ({sum(counts):,})", fontsize=10)
    return to_png(fig)


def documents_section(folder: Path) -> Section:
    """The accounting facts, the outcome table and the two outcome plots of a document ingest or curation folder."""
    folder = Path(folder)
    curated = (folder / "doc_ledger.parquet").exists()
    stats = document_stats(folder)
    levels = track_accounting("documents", document_outcome_views, folder)
    facts = {"accounting": "holds" if accounting_holds(levels) else "BROKEN",
             **stats["document_accounting"]}
    if curated:
        facts = {"preset": stats.get("preset"), "kept": stats.get("kept"), **facts}
    rows = stats["document_outcomes"]
    tables = {"document_outcomes": Table("Documents and image occurrences per outcome", rows,
                                         {"what": "what", "outcome": "outcome", "reason": "reason", "n": "n"})}
    figures = {f"{what}_outcomes": Figure(f"{what.capitalize()}s per outcome", outcome_plot(rows, what))
               for what in ("document", "image")}
    stage = "docs_curate" if curated else "docs_ingest"
    title = "Document curation" if curated else "Document ingest"
    return Section(stage, title, folder, facts, tables, figures)
