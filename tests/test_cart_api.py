"""The Redis cart over HTTP: the session header, adding/merging/setting/removing lines, stock and quantity
limits, prices from the catalogue at read time, expiry and the activity record of the abandoned-cart sweep."""

from __future__ import annotations

import time
from typing import Any

import pytest

from models.cart import store as cart
from models.infra.redis_client import get_redis
from models.infra.settings import get_settings
from models.tables import Product
from tests.support import assert_error, wait_for

API = "/api/v1/cart"
PRODUCTS = "/api/v1/products"
SID = "tab-session-0001"
H = {"X-Session-ID": SID}


def product(sku: str = "TEE-1", **fields: Any) -> Product:
    values = {
        "name": f"Product {sku}",
        "slug": sku.lower(),
        "price": 20000,
        "stock_quantity": 10,
        "tags": [],
        "images": [f"https://cdn.example.com/{sku}.jpg"],
        **fields,
    }
    return Product.create(sku=sku, **values)


def add(client: Any, product_id: Any, quantity: Any, headers: dict[str, str] = H) -> Any:
    return client.post(f"{API}/items", json={"product_id": product_id, "quantity": quantity}, headers=headers)


def test_an_unknown_session_is_an_empty_cart(client: Any) -> None:
    response = client.get(API, headers=H)
    assert response.status_code == 200
    assert response.json() == {
        "session_id": SID,
        "items": [],
        "item_count": 0,
        "subtotal": 0,
        "currency": "KRW",
        "updated_at": None,
    }


def test_adding_merges_quantities_and_prices_lines(client: Any) -> None:
    tee, cap = product("TEE-1"), product("CAP-1", price=15000, track_inventory=False, stock_quantity=0)
    assert add(client, tee.id, 2).status_code == 200
    assert add(client, cap.id, 1).status_code == 200
    body = add(client, tee.id, 3).json()
    assert body["item_count"] == 6 and body["subtotal"] == 5 * 20000 + 15000 and body["currency"] == "KRW"
    lines = {line["product_id"]: line for line in body["items"]}
    assert lines[tee.id] == {
        "product_id": tee.id,
        "name": "Product TEE-1",
        "slug": "tee-1",
        "sku": "TEE-1",
        "image": "https://cdn.example.com/TEE-1.jpg",
        "unit_price": 20000,
        "quantity": 5,
        "subtotal": 100000,
        "currency": "KRW",
        "in_stock": True,
        "available_quantity": 10,
    }
    assert lines[cap.id]["available_quantity"] is None and lines[cap.id]["in_stock"] is True
    assert "+00:00" in body["updated_at"]
    assert client.get(API, headers=H).json() == body
    assert cart.get_quantities(SID) == {tee.id: 5, cap.id: 1}
    assert client.get(API, headers={"X-Session-ID": "another-tab-01"}).json()["items"] == []


def test_prices_come_from_the_catalogue_at_read_time(client: Any, admin_headers: dict[str, str]) -> None:
    tee = product()
    add(client, tee.id, 2)
    client.get(API, headers=H)  # the old price is now in the catalogue cache too
    patched = client.patch(f"{PRODUCTS}/{tee.id}", json={"price": 17000}, headers=admin_headers)
    assert patched.status_code == 200
    body = client.get(API, headers=H).json()
    assert (body["items"][0]["unit_price"], body["subtotal"]) == (17000, 34000)


def test_deleted_or_unpublished_products_drop_out_of_the_cart(client: Any, admin_headers: dict[str, str]) -> None:
    tee, cap = product("TEE-1"), product("CAP-1")
    add(client, tee.id, 1)
    add(client, cap.id, 1)
    hidden = client.patch(f"{PRODUCTS}/{tee.id}", json={"is_published": False}, headers=admin_headers)
    assert hidden.status_code == 200
    assert client.delete(f"{PRODUCTS}/{cap.id}", headers=admin_headers).status_code == 204
    assert client.get(API, headers=H).json()["items"] == []


def test_stock_limits_the_cart_with_insufficient_stock(client: Any) -> None:
    tee = product(stock_quantity=3)
    assert add(client, tee.id, 2).status_code == 200
    error = assert_error(add(client, tee.id, 2), 409, "insufficient_stock")
    assert error["details"] == {"product_id": tee.id, "available": 3, "in_cart": 2}
    assert cart.get_quantities(SID) == {tee.id: 2}
    assert add(client, tee.id, 1).json()["item_count"] == 3
    assert_error(add(client, product("OUT-1", stock_quantity=0).id, 1), 409, "insufficient_stock")
    # Stock that falls after adding (checkouts reserving it) shows on the line once PostgreSQL announces it.
    Product.update(stock_quantity=1).where(Product.id == tee.id).execute()
    line = wait_for(
        lambda: next(
            (line for line in client.get(API, headers=H).json()["items"] if line["available_quantity"] == 1), None
        ),
        what="the stock change to show",
    )
    assert (line["in_stock"], line["available_quantity"], line["quantity"]) == (False, 1, 3)


def test_unknown_and_unpublished_products_are_404(client: Any) -> None:
    hidden = product("HID-1", is_published=False)
    for product_id in (hidden.id, 424242, 2**40):
        assert_error(add(client, product_id, 1), 404, "product_not_found")
    assert cart.get_quantities(SID) == {}


@pytest.mark.parametrize(
    ("payload", "bad_fields"),
    [
        ({"product_id": 1, "quantity": 0}, {"quantity"}),
        ({"product_id": 1, "quantity": -2}, {"quantity"}),
        ({"product_id": 1, "quantity": 10**12}, {"quantity"}),
        ({"product_id": 1, "quantity": "2"}, {"quantity"}),
        ({"product_id": 1, "quantity": 1.5}, {"quantity"}),
        ({"product_id": 1, "quantity": True}, {"quantity"}),
        ({"product_id": "abc", "quantity": 1}, {"product_id"}),
        ({"product_id": -1, "quantity": 1}, {"product_id"}),
        ({"product_id": None}, {"product_id", "quantity"}),
        ({"product_id": 1, "quantity": 1, "price": 1}, {"price"}),
    ],
)
def test_bad_item_bodies_are_422(client: Any, payload: dict[str, Any], bad_fields: set[str]) -> None:
    error = assert_error(client.post(f"{API}/items", json=payload, headers=H), 422, "validation_error")
    assert set(error["details"]["fields"]) == bad_fields


def test_a_line_holds_at_most_the_per_line_maximum(client: Any) -> None:
    limit = get_settings().max_line_quantity
    gift = product("GIFT-1", track_inventory=False, stock_quantity=0)
    assert add(client, gift.id, limit).status_code == 200
    error = assert_error(add(client, gift.id, 1), 422, "validation_error")
    assert set(error["details"]["fields"]) == {"quantity"}
    assert_error(add(client, gift.id, limit + 1), 422, "validation_error")
    assert cart.get_quantities(SID) == {gift.id: limit}


def test_patch_sets_the_quantity_and_zero_removes_the_line(client: Any) -> None:
    tee, cap = product("TEE-1", stock_quantity=5), product("CAP-1")
    add(client, tee.id, 1)
    add(client, cap.id, 1)
    assert client.patch(f"{API}/items/{tee.id}", json={"quantity": 4}, headers=H).json()["item_count"] == 5
    assert_error(client.patch(f"{API}/items/{tee.id}", json={"quantity": 6}, headers=H), 409, "insufficient_stock")
    assert_error(client.patch(f"{API}/items/{tee.id}", json={"quantity": -1}, headers=H), 422, "validation_error")
    assert_error(client.patch(f"{API}/items/{tee.id}", json={}, headers=H), 422, "validation_error")
    body = client.patch(f"{API}/items/{tee.id}", json={"quantity": 0}, headers=H).json()
    assert [line["product_id"] for line in body["items"]] == [cap.id]
    other = product("OTH-1")
    assert_error(client.patch(f"{API}/items/{other.id}", json={"quantity": 1}, headers=H), 404, "cart_item_not_found")
    assert_error(client.patch(f"{API}/items/abc", json={"quantity": 1}, headers=H), 404, "not_found")


def test_delete_line_and_delete_cart(client: Any) -> None:
    tee, cap = product("TEE-1"), product("CAP-1")
    add(client, tee.id, 1)
    add(client, cap.id, 2)
    response = client.delete(f"{API}/items/{tee.id}", headers=H)
    assert response.status_code == 200 and response.json()["item_count"] == 2
    assert client.delete(f"{API}/items/{tee.id}", headers=H).status_code == 200  # already gone: no error
    assert client.delete(API, headers=H).status_code == 204
    assert client.get(API, headers=H).json()["items"] == []
    assert not get_redis().exists(cart.cart_key(SID)) and cart.last_activity(SID) is None
    assert client.delete(API, headers=H).status_code == 204


@pytest.mark.parametrize(
    "header",
    [None, "", "short", "x" * 129, "has space1", "semi;colon", "ünïcode-id".encode(), "a/b/c/d/e", "valid-id-1\n"],
)
def test_missing_or_malformed_session_header_is_400(client: Any, header: str | bytes | None) -> None:
    headers: Any = {} if header is None else {"X-Session-ID": header}
    tee = product()
    for response in (
        client.get(API, headers=headers),
        add(client, tee.id, 1, headers),
        client.patch(f"{API}/items/{tee.id}", json={"quantity": 1}, headers=headers),
        client.delete(f"{API}/items/{tee.id}", headers=headers),
        client.delete(API, headers=headers),
    ):
        assert_error(response, 400, "invalid_session")


def test_boundary_session_ids_are_accepted(client: Any) -> None:
    for sid in ("a" * 8, "Z" * 128, "Ab-_09xy"):
        assert client.get(API, headers={"X-Session-ID": sid}).status_code == 200


def test_writes_refresh_the_ttl_and_record_activity(client: Any) -> None:
    tee = product()
    ttl = get_settings().cart_ttl
    assert ttl == 7 * 24 * 3600
    add(client, tee.id, 1)
    r = get_redis()
    r.expire(cart.cart_key(SID), 60)
    before = time.time()
    add(client, tee.id, 1)
    assert ttl - 5 <= r.ttl(cart.cart_key(SID)) <= ttl
    assert before - 1 <= (cart.last_activity(SID) or 0) <= time.time() + 1
    client.get(API, headers=H)  # reads do not count as activity
    assert cart.abandoned_sessions(3600) == []
    assert cart.abandoned_sessions(-1) == [SID]
    cart.forget_activity([SID])
    assert cart.abandoned_sessions(-1) == []
    add(client, tee.id, 1)  # a later write puts the cart back under watch
    assert cart.abandoned_sessions(-1) == [SID]


def test_abandoned_sessions_skip_expired_and_emptied_carts(client: Any) -> None:
    tee = product()
    for sid in ("abandoned-1", "abandoned-2", "abandoned-3", "abandoned-4"):
        add(client, tee.id, 1, {"X-Session-ID": sid})
    get_redis().delete(cart.cart_key("abandoned-2"))  # expired by Redis
    client.delete(f"{API}/items/{tee.id}", headers={"X-Session-ID": "abandoned-3"})  # emptied
    assert cart.abandoned_sessions(-1) == ["abandoned-1", "abandoned-4"]
    assert cart.abandoned_sessions(-1, limit=1) == ["abandoned-1"]  # oldest first
    assert get_redis().zcard(cart.ACTIVITY_KEY) == 2


def test_openapi_documents_the_session_header(client: Any) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    for path, method in (
        ("/api/v1/cart", "get"),
        ("/api/v1/cart/items", "post"),
        ("/api/v1/cart/items/{product_id}", "patch"),
        ("/api/v1/cart", "delete"),
    ):
        operation = paths[path][method]
        assert any(p["name"] == "X-Session-ID" and p["in"] == "header" for p in operation["parameters"])
        assert "400" in operation["responses"]
