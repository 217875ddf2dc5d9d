"""User-facing errors: a bad input or option stops early with one clear sentence."""


class TesseraUserError(Exception):
    """A problem with the user's input or options; the CLI prints it as one line and exits non-zero."""
