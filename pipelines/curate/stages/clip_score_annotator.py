"""ClipScoreAnnotator: adds the open_clip image-text cosine score (and optionally fp16 image embeddings)."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.curate import columns as C
from pipelines.core import schema as S
from pipelines.core.stage import Stage, StageConfig


class ClipScoreConfig(StageConfig):
    """Which model scores the pairs, and where the image bytes and captions are in the batch."""

    model: str = "tiny"  # see models.clip_registry for the accepted specs
    device: str | None = None  # None: cuda when present, else cpu
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    with_embeddings: bool = False
    gpu_decode: bool | None = None  # None: nvjpeg when the model runs on CUDA
    image_column: str = C.JPG
    text_column: str = S.CAPTION


class ClipScoreAnnotator(Stage):
    """Scores each (image bytes, caption) row; rows whose image does not decode get a null score and an error."""

    config_cls: ClassVar[type[StageConfig]] = ClipScoreConfig
    name: ClassVar[str] = "clip_score"

    def setup(self) -> None:
        from models.clip_scorer import ClipScorer

        cfg = self.config
        self.scorer = ClipScorer(cfg.model, device=cfg.device, precision=cfg.precision)

    def process(self, batch: pa.Table) -> pa.Table:
        cfg = self.config
        images = [b or b"" for b in batch[cfg.image_column].to_pylist()]
        texts = [t or "" for t in batch[cfg.text_column].to_pylist()]
        result = self.scorer.score(images, texts, with_embeddings=cfg.with_embeddings, gpu_decode=cfg.gpu_decode)
        out = batch
        for name in (C.CLIP_SCORE, C.MODEL, C.CLIP_ERROR, C.CLIP_EMBEDDING):
            if name in out.column_names:
                out = out.drop_columns([name])
        out = out.append_column(C.CLIP_SCORE, pa.array(result.scores, pa.float32(), from_pandas=True))
        out = out.append_column(C.MODEL, pa.array([self.scorer.model_id] * batch.num_rows, pa.string()))
        out = out.append_column(C.CLIP_ERROR, pa.array(result.errors, pa.string()))
        if cfg.with_embeddings:
            emb = result.embeddings if result.embeddings is not None else np.zeros((0, 1), np.float16)
            flat = pa.array(emb.reshape(-1), pa.float16())
            out = out.append_column(C.CLIP_EMBEDDING, pa.FixedSizeListArray.from_arrays(flat, emb.shape[1]))
        return out


def null_scores(table: pa.Table) -> int:
    """How many rows of a scored table have no score."""
    return pc.sum(pc.is_null(table[C.CLIP_SCORE]).cast(pa.int64())).as_py() or 0
