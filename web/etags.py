"""If-None-Match, compared weakly (RFC 9110 13.1.2): `W/"o1v3"` matches `"o1v3"`. A proxy that
compresses a response (nginx with gzip) weakens its ETag, and the client then sends the weak form
back; strict comparison would answer every such poll in full and never hold a long poll."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_TAG = re.compile(r'\s*(?:W/)?("[^"]*")\s*(?:,|$)')


@dataclass(frozen=True)
class IfNoneMatch:
    tags: frozenset[str]  # opaque tags, quotes included, weakness dropped
    any: bool = False  # `*`

    def __bool__(self) -> bool:
        return self.any or bool(self.tags)

    def matches(self, etag: str) -> bool:
        """Whether the current ETag (strong or weak) is one the client already has."""
        return self.any or etag.removeprefix("W/") in self.tags


@lru_cache(maxsize=4096)  # a polling client sends the same header again and again
def if_none_match(header: str | None) -> IfNoneMatch:
    """The header's entity tags; malformed entries are ignored (they can match nothing)."""
    if not header or not header.strip():
        return IfNoneMatch(frozenset())
    if header.strip() == "*":
        return IfNoneMatch(frozenset(), any=True)
    return IfNoneMatch(frozenset(m.group(1) for m in _TAG.finditer(header)))
