"""Why a fetch was refused: stable snake_case reasons that start every `error_message` the fetch layer writes.

The message is `"<reason>: <detail>"`, so stats can `GROUP BY split_part(error_message, ':', 1)`. The detail is
for people and may change; the reason may not.
"""

from __future__ import annotations

BLOCKED_PRIVATE_ADDRESS = "blocked_private_address"  # host is or resolves to a non-public address
BLOCKED_SCHEME = "blocked_scheme"  # not http/https (given directly or by a redirect)
TOO_MANY_REDIRECTS = "too_many_redirects"  # more than `max_redirects` hops
IMAGE_TOO_LARGE_BYTES = "image_too_large_bytes"  # Content-Length or the streamed body over `max_image_bytes`
IMAGE_TOO_MANY_PIXELS = "image_too_many_pixels"  # header declares more than `max_image_pixels`
DEADLINE_EXCEEDED = "deadline_exceeded"  # the whole fetch outlived `timeout`
ROBOTS_DISALLOWED = "robots_disallowed"  # robots.txt forbids our user agent (or answered 5xx)
RATE_LIMITED = "rate_limited"  # gave up after retries on 429/503
OPT_OUT_HEADER = "opt_out_header"  # X-Robots-Tag carries a disallowed directive
HTTP_ERROR = "http_error"  # any other non-2xx final status, e.g. "http_error: 404"
CONNECTION_ERROR = "connection_error"  # DNS, connect, TLS, protocol errors, invalid host


# Refusals of the guards themselves (not the server's answers): what a hostile or blocking source produces.
GUARD_REASONS = (
    BLOCKED_PRIVATE_ADDRESS,
    BLOCKED_SCHEME,
    TOO_MANY_REDIRECTS,
    IMAGE_TOO_LARGE_BYTES,
    IMAGE_TOO_MANY_PIXELS,
    DEADLINE_EXCEEDED,
    ROBOTS_DISALLOWED,
    RATE_LIMITED,
)
ALL_REASONS = GUARD_REASONS + (OPT_OUT_HEADER, HTTP_ERROR, CONNECTION_ERROR)


def refusal_message(reason: str, detail: str) -> str:
    """The `error_message` text for a refusal: the reason, then ": detail"."""
    return f"{reason}: {detail}"


def reason_of(error_message: str | None) -> str | None:
    """The reason that starts `error_message`, or None when it is not one of ours (e.g. an img2dataset message)."""
    if not error_message:
        return None
    head = error_message.split(":", 1)[0]
    return head if head in ALL_REASONS else None


class FetchRefused(Exception):
    """A URL the fetch layer will not (or could not) deliver; `str()` is the `error_message`."""

    def __init__(self, reason: str, detail: str, *, retryable: bool = False) -> None:
        super().__init__(refusal_message(reason, detail))
        self.reason = reason
        self.detail = detail
        # Only connection resets are retried from here; 429/503 are retried on their status code.
        self.retryable = retryable
