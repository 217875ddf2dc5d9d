"""The Spark form of caption language id: a pandas UDF that runs `CaptionLanguageFilter.detect`, the same
py3langid model the local stage loads, once per Python worker."""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

from pipelines.core import schema as S
from pipelines.curate import columns as C
from pipelines.curate.stages.caption_language_filter import REASON, CaptionLanguageConfig, CaptionLanguageFilter

LANGUAGE = "_language"


@lru_cache(maxsize=4)
def _detector(config_json: str):
    """The local stage, set up (model loaded) once per worker process and config."""
    stage = CaptionLanguageFilter(CaptionLanguageConfig.model_validate_json(config_json))
    stage.setup()
    return stage


def language_marks(df, stage: CaptionLanguageFilter):
    """`df` with `stage`'s drops filled: the language and probability of every caption still kept, from
    `stage.detect`, and the same rule as its `process` (not allowed, or below the least probability)."""
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf

    from pipelines.curate.spark import SparkMark, apply_marks

    config_json = stage.config.model_dump_json()

    @pandas_udf("language string, probability double")
    def detect(texts: pd.Series) -> pd.DataFrame:
        todo = texts.notna().to_numpy()
        langs = pd.Series([None] * len(texts), dtype=object)
        probs = pd.Series([float("nan")] * len(texts), dtype="float64")
        if todo.any():
            found, p = _detector(config_json).detect(texts[todo].tolist())
            langs[todo], probs[todo] = found, p
        return pd.DataFrame({"language": langs, "probability": probs})

    # Dropped rows pass a null caption, so the model only sees rows still kept (it is the slow part, as locally);
    # non-deterministic so that the optimizer never evaluates the UDF once per column that reads it.
    kept = F.col(C.DROP_REASON).isNull()
    df = df.withColumn(LANGUAGE, detect.asNondeterministic()(
        F.when(kept, F.coalesce(F.col(S.CAPTION), F.lit("")))))
    lang, prob = F.col(f"{LANGUAGE}.language"), F.col(f"{LANGUAGE}.probability")
    bad = ~lang.isin(list(stage.config.languages)) | (prob < F.lit(stage.config.min_probability))
    return apply_marks(df, stage.name, [SparkMark(kept & bad, REASON, prob)]).drop(LANGUAGE)
