"""Suggestions remembered per session: exact hits by a hash of (prefix, suffix, context), and typed-ahead
reuse — when the user types the first characters of a suggestion, the rest is still the suggestion."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass

TAIL_CHARS = 160


def content_key(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    text: str
    path: str
    cursor: int  # absolute offset of the cursor the suggestion was made for
    prefix_tail: str  # the characters just before that cursor
    suffix_key: str
    context_key: str
    created: float
    speculative: bool = False


class SuggestionCache:
    """LRU with a time to live (Tabby: 100 entries, 5 minutes); thread-safe."""

    def __init__(self, clock, capacity: int = 256, ttl_s: float = 300.0, recent_per_path: int = 32):
        self._clock = clock
        self.capacity = capacity
        self.ttl_s = ttl_s
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self._recent: dict[str, deque] = {}
        self._recent_per_path = recent_per_path
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> CacheEntry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self._clock.now() - entry.created > self.ttl_s:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, key: str, entry: CacheEntry) -> None:
        if not entry.text:
            return
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
            recent = self._recent.setdefault(entry.path, deque(maxlen=self._recent_per_path))
            recent.append(entry)

    def typed_ahead(self, path: str, text: str, cursor: int, suffix_key: str,
                    context_key: str) -> tuple[CacheEntry, str] | None:
        """A cached suggestion whose first characters the user has just typed, and what is left of it."""
        now = self._clock.now()
        with self._lock:
            candidates = list(self._recent.get(path, ()))
        for entry in reversed(candidates):
            if now - entry.created > self.ttl_s or entry.suffix_key != suffix_key:
                continue
            if entry.context_key != context_key or not entry.cursor < cursor <= entry.cursor + len(entry.text) - 1:
                continue
            typed = text[entry.cursor: cursor]
            tail_start = max(0, entry.cursor - len(entry.prefix_tail))
            if text[tail_start: entry.cursor] != entry.prefix_tail[len(entry.prefix_tail) - (entry.cursor - tail_start):]:
                continue
            if entry.text.startswith(typed):
                return entry, entry.text[len(typed):]
        return None
