"""Guest checkout (비회원 주문): an order without an account, followed and paid with an order-scoped
token that reaches that order's GET, /status, /pay and DELETE and nothing else; found again by
order number and email (same 404 for any wrong pair, rate limited); its emails go to the guest."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from itsdangerous import TimestampSigner

from models.infra.settings import get_settings
from models.mail import send as mail
from models.orders import guests
from models.tables import IdempotencyKey, Order, Product
from tests.smtp_sink import SMTPSink
from tests.support import ADDRESS, assert_error, checkout_body, register_shopper, wait_for

API = "/api/v1"
GUEST = {"email": "Minji.Kim@Example.com", "phone": "010-1234-5678", "full_name": "김민지"}


@pytest.fixture
def item() -> Product:
    return Product.create(
        sku="SKU-1", name="Linen Shirt", slug="linen-shirt", price=30000, stock_quantity=20, tags=[], images=[]
    )


def guest_order(client: Any, item: Product, session: str = "guest-session-1", **body: Any) -> dict[str, Any]:
    assert (
        client.post(
            f"{API}/cart/items", json={"product_id": item.id, "quantity": 1}, headers={"X-Session-ID": session}
        ).status_code
        == 200
    )
    response = client.post(f"{API}/orders", json=checkout_body(guest=GUEST, **body), headers={"X-Session-ID": session})
    assert response.status_code == 202, response.text
    return dict(response.json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_guest_checkout_answers_the_order_and_its_token(client: Any, item: Product) -> None:
    order = guest_order(client, item)
    assert order["status"] == "pending" and order["user_id"] is None
    assert order["guest"] == {"email": "minji.kim@example.com", "phone": "010-1234-5678", "full_name": "김민지"}
    assert order["total"] == 33000 and order["order_token"]
    seen = client.get(f"{API}/orders/{order['id']}", headers=bearer(order["order_token"]))
    assert seen.status_code == 200 and seen.json()["order_number"] == order["order_number"]
    assert "order_token" not in seen.json()
    row = Order.get_by_id(order["id"])
    assert (row.user_id, row.guest_email, row.guest_name) == (None, "minji.kim@example.com", "김민지")


def test_guest_input_is_checked(client: Any, item: Product, user_headers: dict[str, str]) -> None:
    client.post(f"{API}/cart/items", json={"product_id": item.id, "quantity": 1}, headers={"X-Session-ID": "gs-00001"})
    session = {"X-Session-ID": "gs-00001"}
    assert_error(client.post(f"{API}/orders", json=checkout_body(), headers=session), 401, "not_authenticated")
    fields = assert_error(
        client.post(f"{API}/orders", json=checkout_body(guest={**GUEST, "email": "nope"}), headers=session),
        422,
        "validation_error",
    )["details"]["fields"]
    assert "guest.email" in fields
    fields = assert_error(
        client.post(f"{API}/orders", json=checkout_body(guest={"email": "a@example.com"}), headers=session),
        422,
        "validation_error",
    )["details"]["fields"]
    assert {"guest.phone", "guest.full_name"} <= set(fields)
    body = {"guest": GUEST, "address_id": 1, "shipping_method": "standard", "payment_method": "dummy"}
    assert (
        "address_id"
        in assert_error(client.post(f"{API}/orders", json=body, headers=session), 422, "validation_error")["details"][
            "fields"
        ]
    )
    assert (
        "guest"
        in assert_error(
            client.post(f"{API}/orders", json=checkout_body(guest=GUEST), headers={**session, **user_headers}),
            422,
            "validation_error",
        )["details"]["fields"]
    )
    assert Order.select().count() == 0


def test_a_guest_idempotency_key_returns_the_same_order(client: Any, item: Product) -> None:
    client.post(f"{API}/cart/items", json={"product_id": item.id, "quantity": 1}, headers={"X-Session-ID": "gs-00002"})
    headers = {"X-Session-ID": "gs-00002", "Idempotency-Key": "guest-key-1"}
    first = client.post(f"{API}/orders", json=checkout_body(guest=GUEST), headers=headers)
    again = client.post(f"{API}/orders", json=checkout_body(guest=GUEST), headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"] and again.json()["order_token"]
    other_guest = checkout_body(guest={**GUEST, "email": "someone@example.com"})
    assert_error(client.post(f"{API}/orders", json=other_guest, headers=headers), 422, "idempotency_key_reused")
    assert Order.select().count() == 1
    assert IdempotencyKey.get().user_id is None


def test_a_guest_pays_follows_and_is_emailed(client: Any, item: Product, worker: Any) -> None:
    order = guest_order(client, item)
    token = bearer(order["order_token"])
    wait_for(
        lambda: client.get(f"{API}/orders/{order['id']}/status", headers=token).json()["status"] == "reserved",
        what="the reservation",
    )
    wait_for(lambda: Order.get_by_id(order["id"]).payment_next_action, what="payment preparation")
    assert client.post(f"{API}/orders/{order['id']}/pay", json={"token": "tok_ok"}, headers=token).status_code == 202
    wait_for(
        lambda: client.get(f"{API}/orders/{order['id']}/status", headers=token).json()["status"] == "confirmed",
        what="the capture",
    )


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[SMTPSink]:
    sink = SMTPSink().start()
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(sink.port))
    get_settings.cache_clear()
    yield sink
    sink.stop()
    monkeypatch.undo()
    get_settings.cache_clear()


def test_confirmation_email_goes_to_the_guest(client: Any, item: Product, smtp: SMTPSink) -> None:
    order = guest_order(client, item)
    assert mail.send_order_email(order["id"], "confirmation") is True
    [message] = smtp.messages
    assert message["To"] == "minji.kim@example.com"


def test_guest_cancels_with_the_token(client: Any, item: Product) -> None:
    order = guest_order(client, item)
    cancelled = client.delete(f"{API}/orders/{order['id']}", headers=bearer(order["order_token"]))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["events"][-1]["detail"]["by"] == "customer"


def test_an_order_token_reaches_only_its_own_order(client: Any, item: Product) -> None:
    mine = guest_order(client, item, session="guest-session-1")
    theirs = guest_order(client, item, session="guest-session-2")
    shopper = register_shopper(client, "member@example.com")
    client.post(f"{API}/cart/items", json={"product_id": item.id, "quantity": 1}, headers={"X-Session-ID": "member-s1"})
    member_order = client.post(
        f"{API}/orders", json=checkout_body(), headers={**shopper, "X-Session-ID": "member-s1"}
    ).json()
    token = bearer(mine["order_token"])
    for target in (theirs["id"], member_order["id"]):
        for method, path, body in [
            ("GET", f"/orders/{target}", None),
            ("GET", f"/orders/{target}/status", None),
            ("POST", f"/orders/{target}/pay", {"token": "tok_ok"}),
            ("DELETE", f"/orders/{target}", None),
        ]:
            assert_error(client.request(method, API + path, json=body, headers=token), 404, "order_not_found")
    # A member's access token does not reach a guest's order either.
    for method, path in [
        ("GET", f"/orders/{mine['id']}"),
        ("GET", f"/orders/{mine['id']}/status"),
        ("DELETE", f"/orders/{mine['id']}"),
    ]:
        assert_error(client.request(method, API + path, headers=shopper), 404, "order_not_found")
    assert Order.get_by_id(theirs["id"]).status in {"pending", "reserved"}  # not cancelled, not paid
    assert Order.get_by_id(member_order["id"]).status in {"pending", "reserved"}


def test_an_order_token_is_not_an_access_token_anywhere_else(client: Any, app: Any, item: Product) -> None:
    from web.app import REGISTRIES

    order = guest_order(client, item)
    token = bearer(order["order_token"])
    own = {f"/orders/{{order_id:int}}{suffix}" for suffix in ("", "/status", "/pay")}
    checked = 0
    for prefix, registry in REGISTRIES:
        for ep in registry.endpoints:
            if ep.path in own and ep.method in {"GET", "POST", "DELETE"}:
                continue
            path = prefix + ep.path.replace("{order_id:int}", str(order["id"])).replace(
                "{product_id:int}", str(item.id)
            ).replace("{address_id:int}", "1").replace("{slug}", "linen-shirt")
            path = re.sub(r"\{\w+:int\}", "1", path)  # any other id (a discount's, a review's)
            headers = {**token, "X-Session-ID": "guest-session-1"}
            with_token = client.request(ep.method, path, json={}, headers=headers)
            if ep.auth == "none":  # the header is not read: the same answer as without it
                without = client.request(ep.method, path, json={}, headers={"X-Session-ID": "guest-session-1"})
                assert with_token.status_code == without.status_code, (ep.method, path, with_token.text)
            else:
                assert_error(with_token, 401, "not_authenticated")
            checked += 1
    assert checked > 20
    assert Order.get_by_id(order["id"]).status in {"pending", "reserved"}


def test_an_expired_order_token_is_401(client: Any, item: Product, monkeypatch: pytest.MonkeyPatch) -> None:
    order = guest_order(client, item)
    ttl = get_settings().order_token_ttl
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(__import__("time").time()) - ttl - 5)
    old = guests.sign_order_token(order["id"])
    monkeypatch.undo()
    assert_error(client.get(f"{API}/orders/{order['id']}", headers=bearer(old)), 401, "token_expired")
    assert_error(client.get(f"{API}/orders/{order['id']}/status", headers=bearer(old)), 401, "token_expired")


def test_lookup_by_number_and_email(client: Any, item: Product, user_headers: dict[str, str]) -> None:
    order = guest_order(client, item)
    found = client.post(
        f"{API}/orders/lookup", json={"order_number": order["order_number"].lower(), "email": "MINJI.KIM@example.com"}
    )
    assert found.status_code == 200, found.text
    assert found.json()["order_id"] == order["id"]
    fresh = bearer(found.json()["order_token"])
    assert client.get(f"{API}/orders/{order['id']}/status", headers=fresh).status_code == 200

    client.post(f"{API}/cart/items", json={"product_id": item.id, "quantity": 1}, headers={"X-Session-ID": "member-s2"})
    member = client.post(f"{API}/orders", json=checkout_body(), headers={**user_headers, "X-Session-ID": "member-s2"})
    member_email = client.get(f"{API}/auth/me", headers=user_headers).json()["email"]
    wrong_pairs = [
        {"order_number": order["order_number"], "email": "someone.else@example.com"},
        {"order_number": "ORD-20000101-AAAAAAAA", "email": GUEST["email"]},
        {"order_number": member.json()["order_number"], "email": member_email},  # members log in instead
    ]
    answers = [client.post(f"{API}/orders/lookup", json=pair) for pair in wrong_pairs]
    for answer in answers:
        assert_error(answer, 404, "order_not_found")
    assert len({answer.text for answer in answers}) == 1  # nothing tells the cases apart
    assert_error(
        client.post(f"{API}/orders/lookup", json={"order_number": "x", "email": "bad"}), 422, "validation_error"
    )


def test_lookup_is_rate_limited_per_address(client: Any, item: Product) -> None:
    order = guest_order(client, item)
    pair = {"order_number": order["order_number"], "email": "wrong@example.com"}
    limit = int(get_settings().order_lookup_rate_limit.split("/")[0])
    for _ in range(limit):
        assert client.post(f"{API}/orders/lookup", json=pair).status_code == 404
    limited = client.post(f"{API}/orders/lookup", json={**pair, "email": GUEST["email"]})
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) >= 1


def test_guest_shipping_address_is_snapshotted(client: Any, item: Product) -> None:
    order = guest_order(client, item, shipping_address={**ADDRESS, "city": "Busan"})
    assert order["shipping_address"]["city"] == "Busan"
