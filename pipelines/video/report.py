"""The video track's report stages: a clip ingest folder and a clip curate folder."""

from __future__ import annotations

from pipelines.stats.html_report import ReportStage
from pipelines.video import schema as V
from pipelines.video.curate import LEDGER
from pipelines.video.figures import video_curate_section, video_ingest_section

REPORT_STAGES = (
    ReportStage("video_ingest", lambda p: any((p / V.VIDEO_DIR).glob("*.json")), video_ingest_section),
    ReportStage("video_curate", lambda p: (p / LEDGER).is_file(), video_curate_section),
)
