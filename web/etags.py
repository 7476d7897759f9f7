"""If-None-Match, compared weakly (RFC 9110 13.1.2): `W/"o1v3"` matches `"o1v3"`. A proxy that
compresses a response (nginx with gzip) weakens its ETag, and the client then sends the weak form
back; strict comparison would answer every such poll in full and never hold a long poll."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

# A storefront sends back the one ETag it was given (a few tens of characters); a longer header is
# ignored (the poll is answered in full), so neither parsing it nor remembering it can cost much.
MAX_HEADER = 1024


@dataclass(frozen=True)
class IfNoneMatch:
    tags: frozenset[str]  # opaque tags, quotes included, weakness dropped
    any: bool = False  # `*`

    def __bool__(self) -> bool:
        return self.any or bool(self.tags)

    def matches(self, etag: str) -> bool:
        """Whether the current ETag (strong or weak) is one the client already has."""
        return self.any or etag.removeprefix("W/") in self.tags


NOTHING = IfNoneMatch(frozenset())


def if_none_match(header: str | None) -> IfNoneMatch:
    """The header's entity tags; malformed entries are ignored (they can match nothing), and so is
    a header longer than MAX_HEADER."""
    if not header or len(header) > MAX_HEADER:
        return NOTHING
    return _parsed(header)


@lru_cache(maxsize=4096)  # a polling client sends the same header again and again
def _parsed(header: str) -> IfNoneMatch:
    # One pass of str.split: linear in the header, whatever it holds (a regular expression with
    # optional spaces on both sides of each entry was quadratic on a run of spaces).
    if header.strip() == "*":
        return IfNoneMatch(frozenset(), any=True)
    tags = set()
    for entry in header.split(","):
        tag = entry.strip().removeprefix("W/")
        if len(tag) >= 2 and tag[0] == tag[-1] == '"' and '"' not in tag[1:-1]:
            tags.add(tag)
    return IfNoneMatch(frozenset(tags)) if tags else NOTHING
