"""Unknown query parameters on GET endpoints (cache busters, tracking tags) are ignored, not 422;
known ones are still checked, and unknown body fields are still refused. Cache busters neither
miss the catalogue cache nor fill it."""

from __future__ import annotations

from typing import Any

from models.tables import Product
from tests.support import assert_error, checkout_body
from web.catalog.routes import known_query

API = "/api/v1"
NOISE = {"_": "1712345678901", "utm_source": "newsletter", "utm_campaign": "spring", "colour": "red"}


def test_unknown_query_parameters_on_reads_are_ignored(client: Any, user_headers: dict[str, str]) -> None:
    tee = Product.create(sku="TEE", name="Tee", slug="tee", price=1000, stock_quantity=5, tags=[], images=[])
    plain = client.get(f"{API}/products")
    noisy = client.get(f"{API}/products", params=NOISE)
    assert noisy.status_code == 200 and noisy.json() == plain.json()
    assert client.get(f"{API}/products/{tee.id}", params=NOISE).status_code == 200
    assert client.get(f"{API}/orders", params=NOISE, headers=user_headers).status_code == 200
    assert client.get(f"{API}/categories", params=NOISE).status_code == 200
    assert client.get(f"{API}/shipping-methods", params=NOISE).status_code == 200
    client.post(f"{API}/cart/items", json={"product_id": tee.id, "quantity": 1}, headers={"X-Session-ID": "s-0000001"})
    order = client.post(f"{API}/orders", json=checkout_body(), headers={**user_headers, "X-Session-ID": "s-0000001"})
    status = client.get(f"{API}/orders/{order.json()['id']}/status", params=NOISE, headers=user_headers)
    assert status.status_code == 200


def test_known_parameters_are_still_checked_and_bodies_stay_strict(client: Any) -> None:
    fields = assert_error(client.get(f"{API}/products", params={**NOISE, "page": "0"}), 422, "validation_error")[
        "details"
    ]["fields"]
    assert set(fields) == {"page"}
    tee = Product.create(sku="TEE", name="Tee", slug="tee", price=1000, stock_quantity=5, tags=[], images=[])
    extra = client.post(
        f"{API}/cart/items",
        json={"product_id": tee.id, "quantity": 1, "colour": "red"},
        headers={"X-Session-ID": "s-0000001"},
    )
    fields = assert_error(extra, 422, "validation_error")["details"]["fields"]
    assert set(fields) == {"colour"}


def test_cache_busters_share_one_cached_listing(client: Any) -> None:
    Product.create(sku="TEE", name="Tee", slug="tee", price=1000, stock_quantity=5, tags=[], images=[])
    cache = client.app.state.catalog
    cache.clear()
    for buster in range(5):
        assert client.get(f"{API}/products", params={"category": "tops", "_": str(buster)}).status_code == 200
    assert [key for key in cache._entries if key.startswith("list:")] == ["list:category=tops"]


def test_known_query_keeps_every_known_parameter_as_sent() -> None:
    assert known_query("") == ""
    assert known_query("page=2&sort=price") == "page=2&sort=price"
    assert known_query("_=1&page=2&utm_source=x") == "page=2"
    assert known_query("%70age=2&_=1") == "%70age=2"  # an encoded name is still the page
    assert known_query("q=linen+shirt&fbclid=abc") == "q=linen+shirt"
