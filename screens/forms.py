"""Reading numbers that people type into boxes: a bad value falls back, a wild one is clamped."""

from __future__ import annotations

from textual.widgets import Input


def number_in(box: Input, kind, default, lo=None, hi=None):
    """`kind(box.value)`, or `default` when it does not parse; clamped to [lo, hi] when given."""
    try:
        value = kind(box.value)
    except ValueError:
        return default
    if lo is not None:
        value = max(lo, value)
    if hi is not None:
        value = min(hi, value)
    return value
