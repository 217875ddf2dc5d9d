"""CaptionLengthFilter: drops captions with too few or too many words or characters."""

from __future__ import annotations

import operator
import re
from typing import ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field

from pipelines.curate import columns as C
from pipelines.core import schema as S
from pipelines.core.stage import Stage, StageConfig

# Words are runs of non-whitespace, with ASCII whitespace only, so the Spark path (a Java regex) counts the same.
WHITESPACE = "[ \t\n\x0b\f\r]+"
_WORD = re.compile("[^ \t\n\x0b\f\r]+")


class CaptionLengthConfig(StageConfig):
    """Inclusive bounds; DataComp's "> 2 words, > 5 characters" is min_words=3, min_chars=6."""

    min_words: int | None = Field(None, ge=0)
    max_words: int | None = Field(None, ge=0)
    min_chars: int | None = Field(None, ge=0)
    max_chars: int | None = Field(None, ge=0)


def word_count(text: str | None) -> int:
    """Number of whitespace-separated words (0 for a missing caption)."""
    return len(_WORD.findall(text or ""))


class CaptionLengthFilter(Stage):
    """Marks caption_too_few_words / caption_too_many_words / caption_too_short / caption_too_long, in that order."""

    config_cls: ClassVar[type[StageConfig]] = CaptionLengthConfig
    name: ClassVar[str] = "caption_length"

    def process(self, batch: pa.Table) -> pa.Table:
        captions = batch[S.CAPTION].to_pylist()
        words = np.array([word_count(t) for t in captions], dtype=np.float64)
        chars = np.array([len(t or "") for t in captions], dtype=np.float64)
        out = C.with_drop_columns(batch)
        for bound, values, op, reason in self._rules(words, chars):
            if bound is not None:
                out = C.mark_drops(out, op(values, bound), self.name, reason, values)
        return out

    def spark_marks(self, df) -> list:
        """The same rules as Spark columns over a pool DataFrame."""
        from pyspark.sql import functions as F

        from pipelines.curate.spark import SparkMark

        text = F.coalesce(F.col(S.CAPTION), F.lit(""))
        words = F.size(F.filter(F.split(text, WHITESPACE), lambda x: x != "")).cast("double")
        chars = F.length(text).cast("double")
        return [SparkMark(op(values, bound), reason, values)
                for bound, values, op, reason in self._rules(words, chars) if bound is not None]

    def _rules(self, words, chars) -> list[tuple]:
        """(bound, values, comparison that drops, reason) in the order the rules apply."""
        cfg = self.config
        return [
            (cfg.min_words, words, operator.lt, "caption_too_few_words"),
            (cfg.max_words, words, operator.gt, "caption_too_many_words"),
            (cfg.min_chars, chars, operator.lt, "caption_too_short"),
            (cfg.max_chars, chars, operator.gt, "caption_too_long"),
        ]
