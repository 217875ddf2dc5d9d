"""The document track's curation, composed once for `tessera curate --preset mmc4|obelics` and the Dagster asset:
score images against their documents' texts, select over the pool, write the curated document shards."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from pipelines.documents.curate import presets_by_source, select_documents
from pipelines.documents.presets import DocumentPreset, get_document_preset
from pipelines.documents.scores import score_documents
from pipelines.documents.shards import write_document_shards

DEFAULT_CLIP_MODEL = "ViT-B-32:openai"


def document_presets(names: str) -> list[DocumentPreset]:
    """The presets of a comma-joined list of names (`mmc4,obelics`)."""
    return [get_document_preset(name) for name in names.split(",")]


def default_clip_model(presets: list[DocumentPreset]) -> str:
    """The first preset's reference CLIP model (the one its thresholds were set with), else ViT-B-32."""
    return next((p.reference_clip_model for p in presets if p.reference_clip_model), DEFAULT_CLIP_MODEL)


def curate_documents(ingest_out: Path, out: Path, presets: list[DocumentPreset], clip_model: str, *,
                     min_clip_score: float | None = None, docs_per_shard: int = 1000, batch_size: int = 64,
                     precision: str = "fp32", log: Callable[[str], None] = lambda line: None) -> tuple[dict, dict]:
    """Score (resumable), select and write document shards; returns (selection summary, shard id -> sizes)."""
    score_documents(ingest_out, out, clip_model, batch_size=batch_size, precision=precision,
                    sources=tuple(presets_by_source(presets)), log=log)
    summary = select_documents(ingest_out, out, presets, min_clip_score)
    return summary, write_document_shards(ingest_out, out, docs_per_shard)
