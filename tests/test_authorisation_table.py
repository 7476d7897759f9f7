"""Who may call what, for every endpoint in the app's registries (so endpoints added later are in
the table without editing it): anonymous callers get 401 wherever a token is required,
customers get 403 on administrators' endpoints, and another customer's order or address is 404
on every endpoint that names one, leaving it untouched."""

from __future__ import annotations

import re
from typing import Any

import pytest

from models.tables import Address, Order, Product
from tests.support import ADDRESS
from web.api import Endpoint
from web.app import REGISTRIES

PARAM = re.compile(r"{(\w+)(?::(\w+))?}")
# Path parameters naming something a customer owns: another customer must get 404 for it.
OWNED = {"order_id": "order_not_found", "address_id": "address_not_found"}
# A valid body for each input model reaching an owned resource, so the request gets past
# validation to the ownership check. A new owned endpoint with another body fails until listed.
VALID_BODIES: dict[str, dict[str, Any]] = {
    "AddressPatch": {"city": "Busan"},
    "PayIn": {"token": "tok_ok"},
}


def endpoints() -> list[tuple[str, Endpoint]]:
    return [(prefix, ep) for prefix, registry in REGISTRIES for ep in registry.endpoints]


def label(item: tuple[str, Endpoint]) -> str:
    return f"{item[1].method} {item[0]}{item[1].path}"


ALL = endpoints()
NEEDS_TOKEN = [e for e in ALL if e[1].auth in {"user", "admin", "token"}]
ADMIN_ONLY = [e for e in ALL if e[1].auth == "admin"]
OWNED_BY_CUSTOMERS = [
    e for e in ALL if e[1].auth != "admin" and {name for name, _kind in PARAM.findall(e[1].path)} & set(OWNED)
]


@pytest.fixture
def world(make_user: Any) -> dict[str, Any]:
    owner, owner_headers = make_user(email="owner@example.com")
    _, stranger_headers = make_user(email="stranger@example.com")
    address = Address.create(user=owner.id, **ADDRESS)
    order = Order.create(
        order_number="ORD-OWNED-1",
        user=owner.id,
        status="reserved",
        payment_status="pending",
        currency="KRW",
        subtotal=1000,
        total=1000,
        shipping_address=ADDRESS,
        shipping_method="standard",
        payment_method="dummy",
        payment_gateway="dummy",
        payment_next_action={"type": "token"},
    )
    product = Product.create(sku="SKU-1", name="Tee", slug="tee", price=1000, stock_quantity=5, tags=[], images=[])
    values = {"order_id": order.id, "address_id": address.id, "product_id": product.id, "slug": product.slug}
    return {"owner": owner_headers, "stranger": stranger_headers, "values": values, "order": order, "address": address}


def url(item: tuple[str, Endpoint], values: dict[str, Any]) -> str:
    prefix, ep = item
    # Parameters this file does not know get a plausible value: authentication comes before them.
    return prefix + PARAM.sub(lambda m: str(values.get(m.group(1), 1 if m.group(2) == "int" else "x")), ep.path)


def call(
    client: Any, item: tuple[str, Endpoint], values: dict[str, Any], headers: dict[str, str], body: Any = None
) -> Any:
    ep = item[1]
    if body is None and ep.body is not None:
        body = {}
    return client.request(ep.method, url(item, values), json=body, headers={**headers, "X-Session-ID": "session-authz"})


def test_the_table_covers_what_it_should() -> None:
    assert len(NEEDS_TOKEN) >= 15 and ADMIN_ONLY and len(OWNED_BY_CUSTOMERS) >= 6
    assert {
        "GET /api/v1/orders/{order_id:int}",
        "PATCH /api/v1/addresses/{address_id:int}",
        "GET /api/v1/orders/{order_id:int}/status",
    } <= {label(e) for e in OWNED_BY_CUSTOMERS}


@pytest.mark.parametrize("item", NEEDS_TOKEN, ids=label)
def test_anonymous_callers_get_401(client: Any, world: dict[str, Any], item: tuple[str, Endpoint]) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        response = call(client, item, world["values"], headers)
        assert response.status_code == 401, (label(item), headers, response.text)
        assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("item", ADMIN_ONLY, ids=label)
def test_customers_get_403_on_admin_endpoints(client: Any, world: dict[str, Any], item: tuple[str, Endpoint]) -> None:
    response = call(client, item, world["values"], world["owner"])
    assert response.status_code == 403, (label(item), response.text)
    assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("item", OWNED_BY_CUSTOMERS, ids=label)
def test_another_customers_order_or_address_is_404(
    client: Any, world: dict[str, Any], item: tuple[str, Endpoint]
) -> None:
    ep = item[1]
    body = None
    if ep.body is not None:
        assert ep.body.__name__ in VALID_BODIES, f"add a valid {ep.body.__name__} to VALID_BODIES for {label(item)}"
        body = VALID_BODIES[ep.body.__name__]
    [name] = [name for name, _kind in PARAM.findall(ep.path) if name in OWNED]
    before = (Order.get_by_id(world["order"].id).__data__, Address.get_by_id(world["address"].id).__data__)
    response = call(client, item, world["values"], world["stranger"], body)
    assert response.status_code == 404, (label(item), response.text)
    assert response.json()["error"]["code"] == OWNED[name]
    assert (Order.get_by_id(world["order"].id).__data__, Address.get_by_id(world["address"].id).__data__) == before
    # The owner, with the same request, is not refused as a stranger (the 404 is about ownership).
    assert call(client, item, world["values"], world["owner"], body).status_code != 404
