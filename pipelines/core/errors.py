"""User-facing errors: a bad input, option or environment stops early with one clear sentence."""

from __future__ import annotations

import errno
import os

# errno -> how we say it; these are the environment's fault, not a bug (exit 2).
_OS_CAUSES = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a file stands where a folder should be",
    errno.EEXIST: "something already exists there",
    errno.EISDIR: "a folder stands where a file should be",
    errno.ENOENT: "no such file or folder",
}


class TesseraUserError(Exception):
    """A problem with the user's input or options; the CLI prints it as one line and exits 2."""


class TesseraEnvironmentError(TesseraUserError):
    """The machine stopped us (full disk, read-only or unwritable folder); one line, exit 2."""


def errno_in_text(text: str) -> int | None:
    """The errno whose message a library's error text carries (pyarrow and DuckDB keep only the text)."""
    return next((c for c in _OS_CAUSES if c != errno.ENOENT and os.strerror(c) in text), None)


def describe_os_error(err: BaseException) -> str | None:
    """One sentence naming the cause and the file of an environment error, or None if it is not one of those.

    Libraries that wrap the OS error (pyarrow, DuckDB) keep only its text, so the text is searched as well."""
    code = getattr(err, "errno", None)
    if code not in _OS_CAUSES:
        text = str(err)
        code = errno_in_text(text)
        if code is None:
            return None
        return f"{_OS_CAUSES[code]} ({errno.errorcode[code]}): {text.strip().splitlines()[0][:300]}"
    cause = _OS_CAUSES[code]
    where = str(getattr(err, "filename", None) or "")
    if getattr(err, "filename2", None):
        where = f"{where} -> {err.filename2}"
    return f"{cause} ({errno.errorcode[code]})" + (f": {where}" if where else "")
