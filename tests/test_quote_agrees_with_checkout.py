"""POST /cart/quote answers exactly what POST /orders then charges, or fails with exactly the same
error: hypothesis builds random carts (prices, quantities, stock that dropped after the cart was
filled, products unpublished since, discount codes good and bad: unknown, expired, used up, with a
minimum subtotal, limited per customer (which a guest cannot use), both shipping methods) and sends
each to both endpoints over HTTP. Shipping fees and thresholds come from the settings per currency;
discount codes from the discounts table."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from models.infra import ratelimit
from models.infra.settings import ConfigError, get_settings, load_settings
from models.tables import Discount, Product, utcnow
from tests.support import assert_error, checkout_body

API = "/api/v1"
_serial = itertools.count()
GUEST = {"email": "guest@example.com", "phone": "010-1234-5678", "full_name": "Guest"}

line = st.fixed_dictionaries(
    {
        "price": st.integers(0, 120_000),
        "quantity": st.integers(1, 6),
        # Stock now (the cart was filled when there was enough): mostly plenty, sometimes short.
        "stock": st.one_of(st.just(50), st.integers(0, 8)),
        "tracked": st.booleans(),
        "published": st.sampled_from([True] * 9 + [False]),
    }
)
carts = st.fixed_dictionaries(
    {
        "who": st.sampled_from(["customer", "guest"]),
        "lines": st.lists(line, min_size=0, max_size=4),
        "shipping_method": st.sampled_from(["standard", "express"]),
        "discount_code": st.sampled_from(
            [None, "WELCOME10", "welcome10", "NOPE", "", "FLAT5000", "OVER100K", "GONE", "USEDUP", "ONCE"]
        ),
    }
)


@pytest.fixture(autouse=True)
def codes() -> None:
    """The codes the carts try, one of each kind of answer."""
    Discount.create(code="WELCOME10", kind="percent", value=10)
    Discount.create(code="FLAT5000", kind="fixed", value=5000)
    Discount.create(code="OVER100K", kind="percent", value=15, min_subtotal=100_000)
    Discount.create(code="GONE", kind="percent", value=50, ends_at=utcnow())
    Discount.create(code="USEDUP", kind="fixed", value=1000, usage_limit=3, used_count=3)
    Discount.create(code="ONCE", kind="fixed", value=2000, per_customer_limit=1)


def fill(client: Any, session: str, lines: list[dict[str, Any]]) -> None:
    for spec in lines:
        n = next(_serial)
        product = Product.create(
            sku=f"Q-{n}",
            name=f"Q{n}",
            slug=f"q-{n}",
            price=spec["price"],
            stock_quantity=50,
            track_inventory=spec["tracked"],
            tags=[],
            images=[],
        )
        added = client.post(
            f"{API}/cart/items",
            json={"product_id": product.id, "quantity": spec["quantity"]},
            headers={"X-Session-ID": session},
        )
        assert added.status_code == 200, added.text
        Product.update(stock_quantity=spec["stock"], is_published=spec["published"]).where(
            Product.id == product.id
        ).execute()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cart=carts)
def test_quote_and_order_agree_on_random_carts(client: Any, user_headers: dict[str, str], cart: dict[str, Any]) -> None:
    ratelimit.reset()  # guest checkouts are limited per address; every example is a new shopper
    session = f"quote-{next(_serial):06d}"
    fill(client, session, cart["lines"])
    choice = {"shipping_method": cart["shipping_method"]}
    if cart["discount_code"] is not None:
        choice["discount_code"] = cart["discount_code"]
    if cart["who"] == "customer":  # the customer's cart, which the session's lines are merged into
        assert client.delete(f"{API}/cart", headers=user_headers).status_code == 204
        headers, body = {**user_headers, "X-Session-ID": session}, checkout_body(**choice)
    else:
        headers, body = {"X-Session-ID": session}, checkout_body(guest=GUEST, **choice)
    quoted = client.post(f"{API}/cart/quote", json=choice, headers=headers)
    ordered = client.post(f"{API}/orders", json=body, headers=headers)
    if ordered.status_code == 202:
        assert quoted.status_code == 200, quoted.text
        quote, order = quoted.json(), ordered.json()
        for name in ("subtotal", "shipping_fee", "discount_amount", "total", "currency", "discount_code"):
            assert quote[name] == order[name], (name, quote, order)
        assert quote["item_count"] == order["item_count"]
        event("order placed")
    else:
        event(f"refused: {ordered.json()['error']['code']}")
        assert (quoted.status_code, quoted.json()) == (ordered.status_code, ordered.json())


@pytest.fixture
def tee() -> Product:
    return Product.create(sku="TEE", name="Tee", slug="tee", price=20000, stock_quantity=5, tags=[], images=[])


def add(client: Any, product_id: int, quantity: int, session: str = "session-one") -> None:
    assert (
        client.post(
            f"{API}/cart/items",
            json={"product_id": product_id, "quantity": quantity},
            headers={"X-Session-ID": session},
        ).status_code
        == 200
    )


def test_quote_shows_fee_discount_and_total(client: Any, tee: Product) -> None:
    add(client, tee.id, 2)
    quote = client.post(
        f"{API}/cart/quote",
        json={"shipping_method": "standard", "discount_code": "welcome10"},
        headers={"X-Session-ID": "session-one"},
    ).json()
    assert quote == {
        "subtotal": 40000,
        "shipping_fee": 3000,
        "discount_amount": 4000,
        "total": 39000,
        "currency": "KRW",
        "discount_code": "WELCOME10",
        "shipping_method": "standard",
        "item_count": 2,
    }
    add(client, tee.id, 1)  # 60,000: standard shipping is free from 50,000
    free = client.post(
        f"{API}/cart/quote", json={"shipping_method": "standard"}, headers={"X-Session-ID": "session-one"}
    ).json()
    assert (free["shipping_fee"], free["total"]) == (0, 60000)


def test_quote_errors(client: Any, tee: Product) -> None:
    headers = {"X-Session-ID": "session-one"}
    assert_error(client.post(f"{API}/cart/quote", json={"shipping_method": "standard"}), 400, "invalid_session")
    assert_error(
        client.post(f"{API}/cart/quote", json={"shipping_method": "standard"}, headers=headers), 400, "empty_cart"
    )
    add(client, tee.id, 3)
    fields = assert_error(
        client.post(f"{API}/cart/quote", json={"shipping_method": "drone", "total": 1}, headers=headers),
        422,
        "validation_error",
    )["details"]["fields"]
    assert {"shipping_method", "total"} <= set(fields)
    refused = assert_error(
        client.post(
            f"{API}/cart/quote", json={"shipping_method": "standard", "discount_code": "NOPE"}, headers=headers
        ),
        422,
        "discount_invalid",
    )
    assert refused["details"]["field"] == "discount_code" and "NOPE" in refused["message"]
    Product.update(stock_quantity=1).where(Product.id == tee.id).execute()
    details = assert_error(
        client.post(f"{API}/cart/quote", json={"shipping_method": "standard"}, headers=headers),
        409,
        "insufficient_stock",
    )["details"]
    assert details["lines"] == [{"product_id": tee.id, "sku": "TEE", "requested": 3, "available": 1}]


def test_shipping_methods_list_the_settings_for_the_shop_currency(client: Any) -> None:
    methods = client.get(f"{API}/shipping-methods").json()["items"]
    settings = get_settings()
    assert methods == [
        {
            "code": "standard",
            "name": "Standard delivery",
            "fee": settings.shipping_fees["standard"],
            "free_over": settings.shipping_free_over["standard"],
            "currency": "KRW",
        },
        {
            "code": "express",
            "name": "Express delivery",
            "fee": settings.shipping_fees["express"],
            "free_over": settings.shipping_free_over["express"],
            "currency": "KRW",
        },
    ]
    assert (methods[0]["fee"], methods[0]["free_over"], methods[1]["fee"], methods[1]["free_over"]) == (
        3000,
        50000,
        6000,
        None,
    )


def test_shipping_settings_are_per_currency(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CURRENCY", "USD")
    monkeypatch.setenv("SHIPPING_STANDARD_FEE", "KRW=3000,USD=700")
    monkeypatch.setenv("SHIPPING_EXPRESS_FREE_OVER", "USD=20000")
    usd = load_settings()
    assert usd.shipping_fees == {"standard": 700, "express": 1500}
    assert usd.shipping_free_over == {"standard": 5000, "express": 20000}
    monkeypatch.setenv("CURRENCY", "GBP")
    with pytest.raises(ConfigError, match="SHIPPING_STANDARD_FEE has no amount for CURRENCY=GBP"):
        load_settings()
    monkeypatch.setenv("SHIPPING_STANDARD_FEE", "GBP=three")
    with pytest.raises(ConfigError, match="SHIPPING_STANDARD_FEE"):
        load_settings()
