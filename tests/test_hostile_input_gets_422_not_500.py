"""Input PostgreSQL cannot store or orjson cannot write back is refused with 422 validation_error
at the one boundary every endpoint goes through (web/api.py), never a 500: NUL bytes in any body,
query or path text, keys included; integers past 64 bits in paths and bodies; a phone longer than
its column; and a PATCH that changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from models.tables import Address, Product
from tests.support import ADDRESS, assert_error, checkout_body

API = "/api/v1"
NUL = "a\u0000b"
HUGE = "18446744073709551616"  # 2**64


def fields_of(response: Any) -> dict[str, str]:
    return dict(assert_error(response, 422, "validation_error")["details"]["fields"])


@pytest.fixture
def product() -> Product:
    return Product.create(sku="SKU-1", name="Tee", slug="tee", price=1000, stock_quantity=5, tags=[], images=[])


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/auth/register", {"email": "a@example.com", "password": "long-enough", "full_name": NUL}, "full_name"),
        ("/auth/login", {"email": f"a{NUL}@example.com", "password": "x"}, "email"),
        ("/auth/login", {"email": "a@example.com", "password": NUL}, "password"),
        ("/auth/refresh", {"refresh_token": NUL}, "refresh_token"),
    ],
)
def test_nul_in_anonymous_bodies(client: Any, path: str, body: dict[str, Any], field: str) -> None:
    assert field in fields_of(client.post(API + path, json=body))


def test_nul_in_addresses(client: Any, user_headers: dict[str, str]) -> None:
    assert "recipient_name" in fields_of(
        client.post(f"{API}/addresses", json={**ADDRESS, "recipient_name": NUL}, headers=user_headers)
    )
    created = client.post(f"{API}/addresses", json=ADDRESS, headers=user_headers).json()
    assert "city" in fields_of(
        client.patch(f"{API}/addresses/{created['id']}", json={"city": NUL}, headers=user_headers)
    )
    assert Address.get_by_id(created["id"]).city == ADDRESS["city"]


@pytest.mark.parametrize("query", ["q=a%00b", "category=%00", "tag=x%00", "sort=%00"])
def test_nul_in_catalogue_queries(client: Any, product: Product, query: str) -> None:
    name = query.split("=")[0]
    assert name in fields_of(client.get(f"{API}/products?{query}"))


def test_nul_in_a_path(client: Any, product: Product) -> None:
    assert fields_of(client.get(f"{API}/products/slug/te%00e")) == {
        "slug": "Contains a character that cannot be stored (NUL or an unpaired surrogate)."
    }


def test_nul_in_checkout_pay_and_product_tags(
    client: Any, user_headers: dict[str, str], admin_headers: dict[str, str], product: Product
) -> None:
    session = {"X-Session-ID": "session-hostile"}
    client.post(f"{API}/cart/items", json={"product_id": product.id, "quantity": 1}, headers=session)
    body = checkout_body(shipping_address={**ADDRESS, "city": NUL})
    assert "shipping_address.city" in fields_of(
        client.post(f"{API}/orders", json=body, headers={**user_headers, **session})
    )
    assert "discount_code" in fields_of(
        client.post(f"{API}/orders", json=checkout_body(discount_code=NUL), headers={**user_headers, **session})
    )
    assert "token" in fields_of(client.post(f"{API}/orders/1/pay", json={"token": NUL}, headers=user_headers))
    new = {"sku": "SKU-2", "name": "Cap", "price": 100, "tags": ["ok", NUL]}
    assert "tags.1" in fields_of(client.post(f"{API}/products", json=new, headers=admin_headers))
    assert "tags.0" in fields_of(
        client.patch(f"{API}/products/{product.id}", json={"tags": [NUL]}, headers=admin_headers)
    )


@pytest.mark.parametrize(
    "raw",
    [
        b'{"secret": "s", "status": "DONE", "orderId": "ORD-1", "transactionKey": "tx\\u0000"}',
        b'{"secret": "s", "status": "DONE", "orderId": "ORD-1", "transactionKey": "tx\\ud800"}',
        b'{"eventType": "PAYMENT_STATUS_CHANGED", "data": {"paymentKey": "k\\u0000", "status": "DONE"}}',
    ],
)
def test_nul_or_a_lone_surrogate_in_an_unsigned_webhook(client: Any, raw: bytes) -> None:
    """The Toss webhook parses its own body (no request model), and is not signed."""
    response = client.post(f"{API}/webhooks/toss", content=raw, headers={"Content-Type": "application/json"})
    assert fields_of(response)


def test_nul_in_a_key_is_named_printably(client: Any) -> None:
    response = client.post(f"{API}/auth/login", json={"email": "a@example.com", "password": "x", NUL: 1})
    assert fields_of(response) == {
        "a\\u0000b": "Contains a character that cannot be stored (NUL or an unpaired surrogate)."
    }


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        ("GET", f"/orders/{HUGE}", None, "order_not_found"),
        ("GET", f"/orders/{HUGE}/status", None, "order_not_found"),
        ("POST", f"/orders/{HUGE}/pay", {"token": "tok_ok"}, "order_not_found"),
        ("DELETE", f"/orders/{HUGE}", None, "order_not_found"),
        ("PATCH", f"/orders/{HUGE}", {"status": "cancelled"}, "order_not_found"),
        ("PATCH", "/cart/items/99999999999999999999999", {"quantity": 1}, "cart_item_not_found"),
        ("PATCH", f"/addresses/{HUGE}", {"city": "Seoul"}, "address_not_found"),
        ("DELETE", f"/addresses/{HUGE}", None, "address_not_found"),
        ("GET", f"/products/{HUGE}", None, "product_not_found"),
    ],
)
def test_ids_past_64_bits_in_paths_are_not_found(
    client: Any, admin_headers: dict[str, str], method: str, path: str, body: Any, code: str
) -> None:
    """No column holds such an id: 404 with the endpoint's not-found code, as for any absent id."""
    headers = {**admin_headers, "X-Session-ID": "session-hostile"}
    error = assert_error(client.request(method, API + path, json=body, headers=headers), 404, code)
    assert list(error["details"].values()) == [next(part for part in path.split("/") if part.isdigit())]
    # The message names what is missing, as the same endpoint's 404 for an ordinary absent id does.
    thing = {
        "order_not_found": "order",
        "cart_item_not_found": "cart item",
        "address_not_found": "address",
        "product_not_found": "product",
    }[code]
    assert error["message"] == f"No such {thing}."


def test_removing_a_cart_line_past_64_bits_is_a_no_op_like_any_absent_line(client: Any, product: Product) -> None:
    """DELETE /cart/items/{id} has no not-found answer: an absent line is removed by doing nothing,
    and an id no product can have is one more absent line. The session is still checked first."""
    session = {"X-Session-ID": "session-hostile-delete"}
    client.post(f"{API}/cart/items", json={"product_id": product.id, "quantity": 2}, headers=session)
    response = client.delete(f"{API}/cart/items/{HUGE}", headers=session)
    assert response.status_code == 200, response.text
    assert [(i["product_id"], i["quantity"]) for i in response.json()["items"]] == [(product.id, 2)]
    assert_error(client.delete(f"{API}/cart/items/{HUGE}", headers={"X-Session-ID": "x"}), 400, "invalid_session")


def test_the_largest_64_bit_id_is_simply_not_found(client: Any, user_headers: dict[str, str]) -> None:
    assert_error(client.get(f"{API}/orders/{2**63 - 1}", headers=user_headers), 404, "order_not_found")


def test_integers_past_64_bits_in_bodies(client: Any, user_headers: dict[str, str], product: Product) -> None:
    session = {"X-Session-ID": "session-hostile"}
    client.post(f"{API}/cart/items", json={"product_id": product.id, "quantity": 1}, headers=session)
    for address_id in (2**63, 2**64, 10**30):
        body = {**checkout_body(address_id=address_id), "shipping_address": None}
        assert "address_id" in fields_of(client.post(f"{API}/orders", json=body, headers={**user_headers, **session}))
    assert_error(
        client.post(
            f"{API}/orders",
            json={**checkout_body(address_id=2**63 - 1), "shipping_address": None},
            headers={**user_headers, **session},
        ),
        404,
        "address_not_found",
    )
    for product_id in (2**64, 10**30):
        assert "product_id" in fields_of(
            client.post(f"{API}/cart/items", json={"product_id": product_id, "quantity": 1}, headers=session)
        )
    assert "amount" in fields_of(
        client.post(f"{API}/orders/1/pay", json={"payment_key": "k", "amount": 2**64}, headers=user_headers)
    )


def test_a_phone_longer_than_its_column(client: Any, user_headers: dict[str, str]) -> None:
    phone = "+" + "1" * 32
    assert "phone" in fields_of(client.post(f"{API}/addresses", json={**ADDRESS, "phone": phone}, headers=user_headers))
    assert "phone" in fields_of(
        client.post(
            f"{API}/auth/register",
            json={"email": "b@example.com", "password": "long-enough", "full_name": "B", "phone": phone},
        )
    )
    assert (
        client.post(f"{API}/addresses", json={**ADDRESS, "phone": "+" + "1" * 31}, headers=user_headers).status_code
        == 201
    )


def test_a_patch_without_changes_is_refused(
    client: Any, user_headers: dict[str, str], admin_headers: dict[str, str], product: Product
) -> None:
    created = client.post(f"{API}/addresses", json=ADDRESS, headers=user_headers).json()
    for body in (None, {}):
        response = client.patch(f"{API}/addresses/{created['id']}", json=body, headers=user_headers)
        assert fields_of(response) == {"body": "Send at least one field to change."}
    assert fields_of(client.patch(f"{API}/addresses/{created['id']}", content=b"", headers=user_headers)) == {
        "body": "Send at least one field to change."
    }
    assert fields_of(client.patch(f"{API}/products/{product.id}", json={}, headers=admin_headers)) == {
        "body": "Send at least one field to change."
    }


@pytest.mark.parametrize("offset", ["+20:36", "-16:00"])
def test_an_offset_postgresql_cannot_store_is_422(client: Any, admin_headers: dict[str, str], offset: str) -> None:
    """ISO 8601 allows any offset; PostgreSQL stores at most 15:59 either way (the fuzzer sent +20:36
    and got a 500)."""
    body = {"code": "FAR-AWAY", "kind": "fixed", "value": 1000, "starts_at": f"2027-07-08T18:30:13{offset}"}
    response = client.post("/api/v1/admin/discounts", json=body, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    body["starts_at"] = "2027-07-08T18:30:13+14:00"
    assert client.post("/api/v1/admin/discounts", json=body, headers=admin_headers).status_code == 201


@pytest.mark.parametrize("depth", [990, 1024])
def test_json_nested_a_thousand_deep_is_a_422(client: Any, depth: int) -> None:
    """orjson parses up to 1,024 levels; the check for what cannot be stored walks them without
    recursion (it overflowed Python's stack at about 990 and answered 500)."""
    body = '{"a":' * depth + "1" + "}" * depth
    response = client.post(f"{API}/auth/login", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    deeper = '{"a":' * 1100 + "1" + "}" * 1100
    response = client.post(f"{API}/auth/login", content=deeper, headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 422), response.text
    assert response.json()["error"]["code"] in ("invalid_json", "validation_error")


def test_an_unsigned_webhook_nested_past_any_limit_is_a_422(client: Any) -> None:
    """The Toss webhook parses its own body: a hundred thousand brackets was a RecursionError (500)."""
    raw = b"[" * 100_000 + b"]" * 100_000
    response = client.post(f"{API}/webhooks/toss", content=raw, headers={"Content-Type": "application/json"})
    assert "body" in fields_of(response)
    nested = b'{"eventType": "PAYMENT_STATUS_CHANGED", "data": ' + b'{"a":' * 1000 + b"1" + b"}" * 1001
    response = client.post(f"{API}/webhooks/toss", content=nested, headers={"Content-Type": "application/json"})
    assert response.status_code < 500, response.text
