"""POST /orders: bad input answers the contract's codes; an Idempotency-Key never makes two orders,
even when identical requests race."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2 as httpx
import pytest

from models.tables import Address, Discount, Order, Product
from tests.support import ADDRESS, checkout_body, register_shopper
from tests.support import assert_error as error

API = "/api/v1"


@pytest.fixture
def shopper(client: Any) -> dict[str, str]:
    return register_shopper(client, "ana@example.com")


@pytest.fixture
def item() -> Product:
    return Product.create(sku="SKU-1", name="Tee", slug="tee", price=20000, stock_quantity=50, tags=[], images=[])


def add(client: Any, session: str, product_id: int, quantity: int = 1) -> None:
    response = client.post(
        f"{API}/cart/items", json={"product_id": product_id, "quantity": quantity}, headers={"X-Session-ID": session}
    )
    assert response.status_code == 200, response.text


def post_order(
    client: Any,
    headers: dict[str, str],
    session: str | None = "session-one",
    key: str | None = None,
    body: dict[str, Any] | None = None,
) -> Any:
    extra = {**({"X-Session-ID": session} if session is not None else {}), **({"Idempotency-Key": key} if key else {})}
    return client.post(f"{API}/orders", json=checkout_body() if body is None else body, headers={**headers, **extra})


def test_requires_authentication(client: Any) -> None:
    error(
        client.post(f"{API}/orders", json=checkout_body(), headers={"X-Session-ID": "session-one"}),
        401,
        "not_authenticated",
    )


def test_empty_cart_is_400(client: Any, shopper: dict[str, str]) -> None:
    error(post_order(client, shopper), 400, "empty_cart")


@pytest.mark.parametrize("session", [None, "short", "bad session!", "x" * 129])
def test_missing_or_malformed_session_is_400(client: Any, shopper: dict[str, str], session: str | None) -> None:
    error(post_order(client, shopper, session=session), 400, "invalid_session")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"shipping_method": "teleport", "payment_method": "dummy", "shipping_address": ADDRESS}, "shipping_method"),
        ({"shipping_method": "standard", "payment_method": "cash", "shipping_address": ADDRESS}, "payment_method"),
        ({"shipping_method": "standard", "payment_method": "dummy"}, "body"),
        (
            {"shipping_method": "standard", "payment_method": "dummy", "address_id": 1, "shipping_address": ADDRESS},
            "body",
        ),
        (
            {"shipping_method": "standard", "payment_method": "dummy", "shipping_address": {**ADDRESS, "city": ""}},
            "shipping_address.city",
        ),
        ({"shipping_method": "standard", "payment_method": "dummy", "shipping_address": ADDRESS, "total": 1}, "total"),
    ],
)
def test_invalid_bodies_are_422_naming_the_field(
    client: Any, shopper: dict[str, str], item: Product, body: dict[str, Any], field: str
) -> None:
    add(client, "session-one", item.id)
    fields = error(post_order(client, shopper, body=body), 422, "validation_error")["details"]["fields"]
    assert field in fields, fields


def test_unknown_discount_code_is_422_and_known_one_discounts(
    client: Any, shopper: dict[str, str], item: Product
) -> None:
    Discount.create(code="WELCOME10", kind="percent", value=10)
    add(client, "session-one", item.id, 3)
    refused = error(post_order(client, shopper, body=checkout_body(discount_code="NOPE")), 422, "discount_invalid")
    assert refused["details"]["field"] == "discount_code" and "NOPE" in refused["message"]
    order = post_order(client, shopper, body=checkout_body(discount_code="welcome10", shipping_method="express")).json()
    amounts = (order["subtotal"], order["discount_amount"], order["shipping_fee"], order["total"])
    assert amounts == (60000, 6000, 6000, 60000)


def test_prices_come_from_the_catalogue_not_the_client(client: Any, shopper: dict[str, str], item: Product) -> None:
    add(client, "session-one", item.id, 1)
    Product.update(price=15000).where(Product.id == item.id).execute()
    order = post_order(client, shopper).json()
    assert order["items"][0]["unit_price"] == 15000
    assert order["total"] == 15000 + 3000  # standard shipping under 50,000


def test_each_line_snapshots_its_product_in_the_carts_order(client: Any, shopper: dict[str, str]) -> None:
    """The lines go in as one statement of arrays (models/orders/checkout.py): each column must land
    on its own line, a product without an image too, and the lines keep the cart's order."""
    products = [
        Product.create(
            sku=f"SKU-{n}", name=f"Item {n}", slug=f"item-{n}", price=price, stock_quantity=9, tags=[], images=images
        )
        for n, price, images in ((1, 1000, ["/a.jpg", "/b.jpg"]), (2, 2500, []), (3, 3_000_000_000, ["/c.jpg"]))
    ]
    for product, quantity in zip(reversed(products), (3, 1, 2), strict=True):
        add(client, "session-one", product.id, quantity)
    order = post_order(client, shopper).json()
    lines = [
        (
            i["product_id"],
            i["product_name"],
            i["product_sku"],
            i["product_image"],
            i["unit_price"],
            i["quantity"],
            i["subtotal"],
        )
        for i in order["items"]
    ]
    assert lines == [
        (products[0].id, "Item 1", "SKU-1", "/a.jpg", 1000, 2, 2000),
        (products[1].id, "Item 2", "SKU-2", None, 2500, 1, 2500),
        (products[2].id, "Item 3", "SKU-3", "/c.jpg", 3_000_000_000, 3, 9_000_000_000),  # past 32 bits
    ]
    assert [i["id"] for i in order["items"]] == sorted(i["id"] for i in order["items"])


def test_another_users_address_is_404_and_own_address_is_snapshotted(
    client: Any, shopper: dict[str, str], make_user: Any, item: Product
) -> None:
    other, _ = make_user(email="eve@example.com")
    foreign = Address.create(user=other.id, **ADDRESS)
    add(client, "session-one", item.id)
    body = {"address_id": foreign.id, "shipping_method": "standard", "payment_method": "dummy"}
    error(post_order(client, shopper, body=body), 404, "address_not_found")
    me = client.get(f"{API}/auth/me", headers=shopper).json()
    mine = Address.create(user=me["id"], **{**ADDRESS, "city": "Busan"})
    order = post_order(client, shopper, body={**body, "address_id": mine.id}).json()
    assert order["shipping_address"]["city"] == "Busan"


def test_same_key_same_body_returns_the_same_order(client: Any, shopper: dict[str, str], item: Product) -> None:
    add(client, "session-one", item.id)
    first = post_order(client, shopper, key="key-123")
    second = post_order(client, shopper, key="key-123")
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert Order.select().count() == 1


def test_same_key_different_body_is_422(client: Any, shopper: dict[str, str], item: Product) -> None:
    add(client, "session-one", item.id)
    assert post_order(client, shopper, key="key-123").status_code == 202
    error(
        post_order(client, shopper, key="key-123", body=checkout_body(shipping_method="express")),
        422,
        "idempotency_key_reused",
    )
    assert Order.select().count() == 1


def test_keys_are_per_user(client: Any, shopper: dict[str, str], item: Product) -> None:
    other = register_shopper(client, "bo@example.com")
    add(client, "session-one", item.id)
    add(client, "session-two", item.id)
    a = post_order(client, shopper, key="shared-key").json()
    b = post_order(client, other, session="session-two", key="shared-key").json()
    assert a["id"] != b["id"]


def test_racing_identical_requests_make_one_order(live_server: Any, item: Product) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        headers = register_shopper(http, "racer@example.com")
        add(http, "session-race", item.id, 2)

        def attempt(_: int) -> int:
            with httpx.Client(base_url=live_server.url, timeout=30) as own:
                response = post_order(own, headers, session="session-race", key="race-key")
                assert response.status_code == 202, response.text
                return int(response.json()["id"])

        with ThreadPoolExecutor(max_workers=12) as pool:
            ids = set(pool.map(attempt, range(24)))
    assert len(ids) == 1
    assert Order.select().count() == 1
