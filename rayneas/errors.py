"""The one base class of errors a user can fix (a config key, a genotype, a missing file).

The CLI prints any `RayneasError` as a single line naming the problem and the
fix, and exits with status 2; every other exception is a bug and keeps its
traceback. Subclasses also derive from the matching builtin (ValueError,
FileNotFoundError), so library callers can catch what they already expect.
"""
from __future__ import annotations


class RayneasError(Exception):
    """A mistake in the user's input; the message says what is wrong and how to fix it."""
