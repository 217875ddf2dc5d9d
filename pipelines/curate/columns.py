"""Column names and ledger helpers shared by the curation stages.

Filters never delete rows: they fill `drop_stage/drop_reason/drop_value/duplicate_of` on rows that are still kept,
so the first reason a row met is the one it keeps. The curate writer then routes rows to curated/ or dropped/.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.core import schema as S

# Inputs read from shards.
JPG = "jpg"
SHARD = "shard"
PHASH = "phash"
IMAGE_BYTES = "image_bytes"  # size of the image file stored in the shard tar (img2dataset re-encodes it)

# CLIP score outputs.
CLIP_SCORE = "clip_score"
MODEL = "model"  # the CLIP model id that produced the score
CLIP_ERROR = "clip_error"
CLIP_EMBEDDING = "clip_embedding"
EMBEDDING_REF = "embedding_ref"

# Drop columns (one set per row; the first filter that fires fills them).
DROP_STAGE = "drop_stage"
DROP_REASON = S.DROP_REASON
DROP_VALUE = "drop_value"
DUPLICATE_OF = S.DUPLICATE_OF

DROP_FIELDS = (
    pa.field(DROP_STAGE, pa.string()),
    pa.field(DROP_REASON, pa.string()),
    pa.field(DROP_VALUE, pa.float64()),
    pa.field(DUPLICATE_OF, pa.string()),
)


def with_drop_columns(table: pa.Table) -> pa.Table:
    """Add empty drop columns to `table` if it does not have them yet."""
    for field in DROP_FIELDS:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table


def kept_mask(table: pa.Table) -> np.ndarray:
    """Boolean mask of rows no filter has dropped so far."""
    if DROP_REASON not in table.column_names:
        return np.ones(table.num_rows, dtype=bool)
    return pc.is_null(table[DROP_REASON]).to_numpy(zero_copy_only=False)


def column_or_nulls(table: pa.Table, name: str, dtype=np.float64) -> np.ndarray:
    """A numeric column as a float array with NaN for nulls; all NaN when the column is absent."""
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan, dtype=dtype)
    col = pc.cast(table[name], pa.float64(), safe=False)
    return col.to_numpy(zero_copy_only=False).astype(dtype)


def mark_drops(table: pa.Table, mask, stage: str, reason: str, values=None, duplicate_of=None) -> pa.Table:
    """Set the drop columns on rows where `mask` is true and no earlier filter has fired."""
    table = with_drop_columns(table)
    hit = np.asarray(mask, dtype=bool) & kept_mask(table)
    if not hit.any():
        return table
    n = table.num_rows
    stages = np.array(table[DROP_STAGE].to_pylist(), dtype=object)
    reasons = np.array(table[DROP_REASON].to_pylist(), dtype=object)
    vals = column_or_nulls(table, DROP_VALUE)
    dups = np.array(table[DUPLICATE_OF].to_pylist(), dtype=object)
    stages[hit] = stage
    reasons[hit] = reason
    if values is not None:
        vals[hit] = np.broadcast_to(np.asarray(values, dtype=np.float64), (n,))[hit]
    if duplicate_of is not None:
        dups[hit] = np.asarray(duplicate_of, dtype=object)[hit]
    new = {
        DROP_STAGE: pa.array(stages, pa.string()),
        DROP_REASON: pa.array(reasons, pa.string()),
        DROP_VALUE: pa.array(vals, pa.float64(), from_pandas=True),
        DUPLICATE_OF: pa.array(dups, pa.string()),
    }
    for name, arr in new.items():
        table = table.set_column(table.column_names.index(name), name, arr)
    return table
