"""Column names, statuses and reasons shared by every stage.

Statuses and reasons are stable snake_case strings: they are GROUP BY keys in `sql/` and in users' queries.
"""

from __future__ import annotations

# Canonical metadata columns (every source is mapped onto these).
KEY = "key"
URL = "url"
CAPTION = "caption"
SOURCE = "source"
ORIGINAL_WIDTH = "original_width"
ORIGINAL_HEIGHT = "original_height"

# Where an input row came from: together they name one input row for the life of the dataset.
INPUT_FILE = "input_file"
INPUT_ROW = "input_row"

# Metadata-declared image size, renamed on the way into img2dataset, which writes its own
# `original_width/original_height` (measured on the downloaded image) into the sidecar.
META_WIDTH = "meta_original_width"
META_HEIGHT = "meta_original_height"

# img2dataset sidecar columns.
STATUS = "status"
ERROR_MESSAGE = "error_message"
WIDTH = "width"
HEIGHT = "height"
SHA256 = "sha256"

# Ledger columns.
REASON = "reason"
DUPLICATE_OF = "duplicate_of"
DROP_REASON = "drop_reason"
STAGE = "stage"
VALUE = "value"

# Download statuses, exactly as img2dataset writes them.
STATUS_SUCCESS = "success"

# Columns of the rejects ledger, in order.
REJECT_COLUMNS = (INPUT_FILE, INPUT_ROW, URL, CAPTION, SOURCE, REASON, DUPLICATE_OF)

# Output layout under an ingest folder.
SHARDS_DIR = "shards"
REJECTS_DIR = "rejects"
PREPARED_DIR = "prepared"
PARTITIONS_DIR = "partitions"
SIZES_FILE = "sizes.json"
