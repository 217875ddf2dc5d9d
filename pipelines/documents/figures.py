"""Documents as a person reads them: where every document and image occurrence went (facts, a table, and one bar
chart per kind), for `tessera report` and the document asset pages. Ingest and curation folders both work."""

from __future__ import annotations

from pathlib import Path

from pipelines.core.accounting import accounting_holds, track_accounting
from pipelines.documents.stats import document_outcome_views, document_stats
from pipelines.stats.outcome_plot import outcome_plot
from pipelines.stats.section import Figure, Section, Table

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
