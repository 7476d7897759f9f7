"""Product slugs: one definition of what a slug is, for the slugs the catalogue derives from names,
the slugs administrators send, and the slugs shoppers look products up by.

A slug is runs of letters and digits (of any script, as Python's `\\w` without `_` has them) joined
by single hyphens, in its canonical form: NFKC, then lower case. Stored slugs are canonical (derived
ones are built so; sent ones are made so before they are checked), and a lookup makes the slug it
is given canonical too, so `Linen-Shirt` or a decomposed `café` finds `linen-shirt` or `café`.
"""

from __future__ import annotations

import re
import unicodedata

# Python's re, whose \w every check here uses: the API's validator (web/catalog/schemas.py) runs
# is_valid() rather than handing this pattern to another regex engine, whose \w differs (Rust's
# leaves out numerals such as '௰', which str.isalnum() counts).
SLUG_PATTERN = r"^[^\W_]+(?:-[^\W_]+)*$"
MAX_LENGTH = 220  # products.slug
DERIVED_LENGTH = 200  # a derived slug's, leaving room for "-2" ... "-50" or "-<8 hex digits>"
_SLUG = re.compile(SLUG_PATTERN)
_JUNK = re.compile(r"[\W_]+")  # anything but letters and digits, the underscore included


def canonical(text: str) -> str:
    """The form slugs are stored and looked up in: NFKC, lower case, no surrounding whitespace."""
    return unicodedata.normalize("NFKC", text.strip()).lower()


def is_valid(slug: str) -> bool:
    """Whether a canonical slug is one the catalogue stores (the API's Slug type checks this)."""
    return 0 < len(slug) <= MAX_LENGTH and _SLUG.fullmatch(slug) is not None


def slugify(name: str) -> str:
    """A slug from a product name: canonical, each run of anything but letters/digits one '-'."""
    slug = _JUNK.sub("-", canonical(name)).strip("-")[:DERIVED_LENGTH].strip("-")
    return slug or "product"
