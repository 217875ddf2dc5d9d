"""The document track's report stages: a document ingest folder and a document curate folder."""

from __future__ import annotations

from pipelines.core import schema as S
from pipelines.documents import schema as D
from pipelines.documents.figures import documents_section
from pipelines.stats.html_report import ReportStage

REPORT_STAGES = (
    ReportStage("docs_ingest", lambda p: any((p / D.DOCS_DIR).glob("*.json")) and (p / S.SHARDS_DIR).is_dir(),
                documents_section),
    ReportStage("docs_curate", lambda p: (p / "doc_ledger.parquet").is_file(), documents_section),
)
