"""One exception type for every user-facing failure, so the CLI can print a single line."""


class GcmEditError(Exception):
    """A problem the user can fix (bad input, missing model, failed verification)."""
