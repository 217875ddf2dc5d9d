"""Guarded, polite HTTP fetch for image ingest (docs/download.md).

Light imports only here; the img2dataset integration lives in `fetch.downloader` (GuardedDownloader) and
`fetch.decode_guard` (GuardedResizer, image_pixels_error), which load OpenCV and albumentations.
"""

from pipelines.ingest.fetch.address import AddressPolicy, parse_inet_aton
from pipelines.ingest.fetch.config import ALLOW_PRIVATE_ENV, FetchConfig
from pipelines.ingest.fetch.fetcher import Fetcher
from pipelines.ingest.fetch.reasons import ALL_REASONS, FetchRefused, reason_of

__all__ = [
    "ALLOW_PRIVATE_ENV",
    "ALL_REASONS",
    "AddressPolicy",
    "FetchConfig",
    "FetchRefused",
    "Fetcher",
    "parse_inet_aton",
    "reason_of",
]
