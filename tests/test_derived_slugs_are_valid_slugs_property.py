"""Whatever a product is named, the slug the catalogue derives from the name is one the API accepts
back unchanged (PATCH /products/{id} with the slug it read) and finds the product by: slugify()
and the API's Slug type follow one definition (models/catalog/slugs.py)."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from models.catalog import slugs
from web.catalog.schemas import Slug

SLUG = TypeAdapter(Slug)


@settings(max_examples=2000, deadline=None)
@given(st.text(max_size=300))
@example("Tee _ Shirt")  # the underscore: a break, not a letter
@example("௰ Tamil ten")  # a numeral str.isalnum() counts but another regex engine's \w does not
@example("Cafe\u0301 \u2126hm \ufb01ne")  # decomposed, compatibility characters
@example("___")
def test_a_derived_slug_is_valid_canonical_and_accepted_back_unchanged(name: str) -> None:
    slug = slugs.slugify(name)
    assert slugs.is_valid(slug), slug
    assert slugs.canonical(slug) == slug  # a lookup by it finds the stored slug
    assert SLUG.validate_python(slug) == slug
    assert slugs.slugify(slug) == slug
