"""Input records rejected before download (document and video sources): the record, its rejects-file schema and
the exception a source's parsers raise to make one."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from pipelines.core.schema import INPUT_FILE, INPUT_ROW, REASON


@dataclass(frozen=True)
class Reject:
    """An input record that cannot be used: where it was, why (stable reason) and a short detail."""

    input_file: str
    input_row: int
    reason: str
    detail: str


# A partition's `<name>.rejects.parquet`: one row per Reject, its fields in order.
REJECT_SCHEMA = pa.schema([(INPUT_FILE, pa.string()), (INPUT_ROW, pa.int64()), (REASON, pa.string()),
                           ("detail", pa.string())])


class BadInput(Exception):
    """Raised by a source's parsers with a stable reason and a short detail; the reader turns it into a Reject."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail
