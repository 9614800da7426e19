"""A small thread-safe least-recently-used store, bounded by entry count and by bytes."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

__all__ = ["BoundedLRU"]


class BoundedLRU:
    """Values by key, the least recently used leaving first once over ``max_entries`` or ``max_bytes``.

    The newest entry always stays, even alone over ``max_bytes``. Thread-safe.

    Parameters
    ----------
    max_entries : int
        Most values kept; 0 keeps nothing.
    max_bytes : int
        Most bytes kept, as told by :meth:`put`.
    """

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0

    def get(self, key: str) -> Any | None:
        """The value stored under ``key`` (now the most recently used), or ``None``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[0]

    def put(self, key: str, value: Any, size: int) -> None:
        """Store ``value`` (``size`` bytes) under ``key``, evicting the least recently used over the bounds."""
        if self.max_entries < 1:
            return
        with self._lock:
            self._entries[key] = (value, size)
            self._entries.move_to_end(key)
            while len(self._entries) > 1 and (
                len(self._entries) > self.max_entries or sum(s for _, s in self._entries.values()) > self.max_bytes
            ):
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
