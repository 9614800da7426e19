"""Rounding sizes up to a multiple: padded widths, length buckets, row buckets, windows."""

from __future__ import annotations

from typing import TypeVar

import numpy as np

__all__ = ["round_up"]

_Size = TypeVar("_Size", int, np.ndarray)


def round_up(size: _Size, multiple: int) -> _Size:
    """``size`` rounded up to a multiple of ``multiple`` (an int, or each entry of an integer array)."""
    return -(-size // multiple) * multiple
