"""CaptionLanguageFilter: keeps captions in the allowed languages, identified with py3langid (model shipped)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field

from pipelines.curate import columns as C
from pipelines.core import schema as S
from pipelines.core.stage import Stage, StageConfig

REASON = "caption_language"


class CaptionLanguageConfig(StageConfig):
    """Allowed ISO 639-1 codes and the least normalised probability the identifier must give them."""

    languages: tuple[str, ...] = ("en",)
    min_probability: float = Field(0.0, ge=0.0, le=1.0)


class CaptionLanguageFilter(Stage):
    """Marks `caption_language` (value: probability of the detected language) when it is not allowed."""

    config_cls: ClassVar[type[StageConfig]] = CaptionLanguageConfig
    name: ClassVar[str] = "caption_language"

    def setup(self) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        self.identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)

    def detect(self, texts: list[str | None]) -> tuple[list[str], np.ndarray]:
        """Language code and probability per text."""
        found = [self.identifier.classify(t or "") for t in texts]
        return [lang for lang, _ in found], np.array([p for _, p in found], dtype=np.float64)

    def process(self, batch: pa.Table) -> pa.Table:
        out = C.with_drop_columns(batch)
        todo = np.flatnonzero(C.kept_mask(out))  # langid is the slow part: skip rows already dropped
        captions = batch[S.CAPTION].take(pa.array(todo, pa.int64())).to_pylist()
        langs, probs = self.detect(captions)
        bad = np.zeros(batch.num_rows, dtype=bool)
        values = np.full(batch.num_rows, np.nan)
        allowed = set(self.config.languages)
        bad[todo] = [lang not in allowed or p < self.config.min_probability for lang, p in zip(langs, probs)]
        values[todo] = probs
        return C.mark_drops(out, bad, self.name, REASON, values)

    def spark_apply(self, df):
        """The same rule on Spark: `detect` in a pandas UDF over the captions still kept (spark_language.py)."""
        from pipelines.curate.spark_language import language_marks

        return language_marks(df, self)
