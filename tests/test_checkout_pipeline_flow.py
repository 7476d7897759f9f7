"""The checkout pipeline end to end over HTTP with a real Celery worker: reserve, pay, decline,
transient errors, cancel, admin transitions, status polling."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from models.payments.dummy import DummyGateway
from models.tables import EmailLog, Order, Product
from tests.support import checkout_body, register_shopper, wait_for

pytestmark = pytest.mark.pipeline
API = "/api/v1"


def product(stock: int = 10, price: int = 12000, sku: str = "SKU-1", **extra: Any) -> Product:
    return Product.create(
        sku=sku,
        name=f"Item {sku}",
        slug=sku.lower(),
        price=price,
        stock_quantity=stock,
        category="tops",
        tags=[],
        images=[f"/img/{sku}.jpg"],
        **extra,
    )


def fill_cart(client: Any, session: str, lines: dict[int, int]) -> None:
    for product_id, quantity in lines.items():
        response = client.post(
            f"{API}/cart/items",
            json={"product_id": product_id, "quantity": quantity},
            headers={"X-Session-ID": session},
        )
        assert response.status_code == 200, response.text


def place(client: Any, headers: dict[str, str], session: str, key: str | None = None, **body: Any) -> Any:
    extra = {"X-Session-ID": session, **({"Idempotency-Key": key} if key else {})}
    return client.post(f"{API}/orders", json=checkout_body(**body), headers={**headers, **extra})


def status_of(client: Any, headers: dict[str, str], order_id: int) -> dict[str, Any]:
    response = client.get(f"{API}/orders/{order_id}/status", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def wait_status(
    client: Any, headers: dict[str, str], order_id: int, *wanted: str, timeout: float = 15
) -> dict[str, Any]:
    return wait_for(
        lambda: (s := status_of(client, headers, order_id))["status"] in wanted and s,
        timeout=timeout,
        what=f"order {order_id} to become {wanted}",
    )


def reserved_order(client: Any, headers: dict[str, str], stock: int = 10, quantity: int = 2) -> tuple[int, Product]:
    item = product(stock=stock)
    fill_cart(client, "session-one", {item.id: quantity})
    response = place(client, headers, "session-one")
    assert response.status_code == 202, response.text
    order_id = response.json()["id"]
    wait_status(client, headers, order_id, "reserved")
    wait_for(lambda: Order.get_by_id(order_id).payment_next_action, what="payment preparation")
    return order_id, item


def test_happy_path_pending_reserved_confirmed(client: Any, worker: Any) -> None:
    headers = register_shopper(client, "ana@example.com")
    item = product(stock=5, price=30000)
    fill_cart(client, "session-one", {item.id: 2})
    response = place(client, headers, "session-one")
    assert response.status_code == 202
    order = response.json()
    assert order["status"] == "pending" and order["payment_status"] == "pending"
    assert order["subtotal"] == 60000 and order["shipping_fee"] == 0 and order["total"] == 60000
    assert order["currency"] == "KRW"
    assert (
        order["items"][0] | {"product_name": "Item SKU-1", "unit_price": 30000, "quantity": 2, "subtotal": 60000}
        == order["items"][0]
    )

    wait_status(client, headers, order["id"], "reserved")
    assert Product.get_by_id(item.id).stock_quantity == 3
    # The gateway prepares the payment just after the reservation commits.
    detail = wait_for(
        lambda: (
            (d := client.get(f"{API}/orders/{order['id']}", headers=headers).json())["payment"]["next_action"] and d
        ),
        what="the payment to be prepared",
    )
    assert detail["payment"]["next_action"] == {"type": "token"}
    assert detail["reserved_until"] is not None

    # How fast confirmed shows up is measured by bench/ (pay-to-confirmed p50/p99), not asserted here.
    assert client.post(f"{API}/orders/{order['id']}/pay", json={"token": "tok_ok"}, headers=headers).status_code == 202
    final = wait_status(client, headers, order["id"], "confirmed")
    assert final["payment_status"] == "paid"
    detail = client.get(f"{API}/orders/{order['id']}", headers=headers).json()
    types = [e["type"] for e in detail["events"]]
    assert types[:4] == ["order_created", "stock_reserved", "payment_prepared", "payment_submitted"]
    assert "payment_captured" in types
    captured = next(e for e in detail["events"] if e["type"] == "payment_captured")
    assert captured["task_id"] and captured["from_status"] == "reserved" and captured["to_status"] == "confirmed"
    assert Product.get_by_id(item.id).stock_quantity == 3
    wait_for(
        lambda: EmailLog.get_or_none(
            EmailLog.order == order["id"], EmailLog.kind == "confirmation", EmailLog.status == "sent"
        ),
        what="the confirmation email",
    )
    # The paid cart is emptied; the order keeps its snapshot.
    wait_for(
        lambda: client.get(f"{API}/cart", headers={"X-Session-ID": "session-one"}).json()["items"] == [],
        what="the cart to be cleared",
    )


def test_decline_fails_the_order_and_releases_stock(client: Any, worker: Any) -> None:
    headers = register_shopper(client, "ana@example.com")
    order_id, item = reserved_order(client, headers, stock=4, quantity=3)
    assert Product.get_by_id(item.id).stock_quantity == 1
    client.post(f"{API}/orders/{order_id}/pay", json={"token": "tok_decline"}, headers=headers)
    final = wait_status(client, headers, order_id, "failed")
    assert final["payment_status"] == "failed"
    assert Order.get_by_id(order_id).failure_reason == "payment_declined"
    assert Product.get_by_id(item.id).stock_quantity == 4
    # The cart survives a failed checkout so the shopper can try again.
    assert client.get(f"{API}/cart", headers={"X-Session-ID": "session-one"}).json()["item_count"] == 3


def test_transient_gateway_error_retries_and_charges_once(client: Any, worker: Any) -> None:
    headers = register_shopper(client, "ana@example.com")
    order_id, _ = reserved_order(client, headers)
    client.post(f"{API}/orders/{order_id}/pay", json={"token": "tok_error"}, headers=headers)
    wait_status(client, headers, order_id, "confirmed", timeout=20)
    ledger = DummyGateway().ledger()
    assert ledger.calls["capture"] == 2
    assert len(ledger.charges) == 1


def test_out_of_stock_fails_with_the_lines_named(client: Any, worker: Any) -> None:
    """Checkout refuses a cart that already holds more than is in stock (409, as the quote does);
    stock sold between the checkout's commit and the reservation fails the order instead."""
    from concurrent.futures import ThreadPoolExecutor

    from models.infra import failpoints

    headers = register_shopper(client, "ana@example.com")
    item = product(stock=3)
    fill_cart(client, "session-one", {item.id: 3})
    Product.update(stock_quantity=2).where(Product.id == item.id).execute()
    refused = place(client, headers, "session-one")
    assert refused.status_code == 409 and refused.json()["error"]["details"]["lines"] == [
        {"product_id": item.id, "sku": "SKU-1", "requested": 3, "available": 2}
    ]
    Product.update(stock_quantity=3).where(Product.id == item.id).execute()
    failpoints.arm("orders.before_render", "hold")  # committed, reservation not yet published
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(place, client, headers, "session-one")
        wait_for(lambda: failpoints.held("orders.before_render"), what="the checkout to commit")
        Product.update(stock_quantity=1).where(Product.id == item.id).execute()  # sold elsewhere meanwhile
        failpoints.release("orders.before_render")
        order_id = answer.result(timeout=30).json()["id"]
    wait_status(client, headers, order_id, "failed")
    order = client.get(f"{API}/orders/{order_id}", headers=headers).json()
    assert order["failure_reason"] == "out_of_stock"
    assert order["failure_detail"]["lines"] == [{"product_id": item.id, "sku": "SKU-1", "requested": 3, "available": 1}]
    assert Product.get_by_id(item.id).stock_quantity == 1


def test_a_product_deleted_before_the_reservation_fails_the_order(
    client: Any, make_user: Any, admin_headers: dict[str, str]
) -> None:
    """A product deleted between the checkout's commit and the reservation (its order lines keep
    their snapshot, product_id NULL) fails the order as out of stock, the gone line named by its
    snapshot SKU with nothing available: the order is never reserved and charged in full for an
    item there is no stock of, and its other lines take nothing."""
    from models import events
    from models.orders import pipeline
    from models.orders.checkout import place_order
    from models.tables import StockEntry

    kept, gone = product(stock=5, sku="SKU-KEPT"), product(stock=5, sku="SKU-GONE")
    user, headers = make_user()
    fill_cart(client, "session-one", {kept.id: 2, gone.id: 1})
    with events.collecting():
        order_id = place_order(user, "session-one", checkout_body(), None).order.id
    assert client.delete(f"{API}/products/{gone.id}", headers=admin_headers).status_code == 204
    with events.collecting():
        pipeline.reserve_stock(order_id)
    order = client.get(f"{API}/orders/{order_id}", headers=headers).json()
    assert order["status"] == "failed" and order["failure_reason"] == "out_of_stock"
    assert order["failure_detail"]["lines"] == [{"product_id": None, "sku": "SKU-GONE", "requested": 1, "available": 0}]
    assert not Order.get_by_id(order_id).stock_held
    assert Product.get_by_id(kept.id).stock_quantity == 5
    assert not StockEntry.select().where(StockEntry.order == order_id).exists()


def test_pay_requires_reserved_state_and_a_valid_token(client: Any, worker: Any) -> None:
    headers = register_shopper(client, "ana@example.com")
    order_id, _ = reserved_order(client, headers)
    bad = client.post(f"{API}/orders/{order_id}/pay", json={"token": 42}, headers=headers)
    assert bad.status_code == 422 and "token" in bad.json()["error"]["details"]["fields"]
    assert client.post(f"{API}/orders/{order_id}/pay", json={"token": "tok_ok"}, headers=headers).status_code == 202
    wait_status(client, headers, order_id, "confirmed")
    again = client.post(f"{API}/orders/{order_id}/pay", json={"token": "tok_ok"}, headers=headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"


def test_cancel_confirmed_order_releases_stock_and_refunds(client: Any, worker: Any) -> None:
    headers = register_shopper(client, "ana@example.com")
    order_id, item = reserved_order(client, headers, stock=10, quantity=2)
    client.post(f"{API}/orders/{order_id}/pay", json={"token": "tok_ok"}, headers=headers)
    wait_status(client, headers, order_id, "confirmed")
    response = client.delete(f"{API}/orders/{order_id}", headers=headers)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert Product.get_by_id(item.id).stock_quantity == 10
    wait_for(lambda: status_of(client, headers, order_id)["payment_status"] == "refunded", what="the refund")
    assert len(DummyGateway().ledger().refunds) == 1
    # Cancelling twice answers with the cancelled order and changes nothing.
    assert client.delete(f"{API}/orders/{order_id}", headers=headers).status_code == 200
    assert Product.get_by_id(item.id).stock_quantity == 10


def test_admin_ships_and_delivers_then_cancel_is_refused(client: Any, worker: Any, make_user: Any) -> None:
    headers = register_shopper(client, "ana@example.com")
    _, admin = make_user(email="boss@example.com", admin=True)
    order_id, _ = reserved_order(client, headers)
    client.post(f"{API}/orders/{order_id}/pay", json={"token": "tok_ok"}, headers=headers)
    wait_status(client, headers, order_id, "confirmed")

    forbidden = client.patch(
        f"{API}/orders/{order_id}", json={"status": "shipped", "tracking_number": "T1"}, headers=headers
    )
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "forbidden"
    no_tracking = client.patch(f"{API}/orders/{order_id}", json={"status": "shipped"}, headers=admin)
    assert no_tracking.status_code == 422 and "tracking_number" in no_tracking.json()["error"]["details"]["fields"]
    too_early = client.patch(f"{API}/orders/{order_id}", json={"status": "delivered"}, headers=admin)
    assert too_early.status_code == 409 and too_early.json()["error"]["code"] == "invalid_transition"

    shipped = client.patch(
        f"{API}/orders/{order_id}",
        json={"status": "shipped", "tracking_number": "6401-2345-6789", "carrier": "04"},
        headers=admin,
    )
    assert shipped.status_code == 200 and shipped.json()["tracking_number"] == "640123456789"
    refused = client.delete(f"{API}/orders/{order_id}", headers=headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "invalid_state"
    delivered = client.patch(f"{API}/orders/{order_id}", json={"status": "delivered"}, headers=admin)
    assert delivered.status_code == 200 and delivered.json()["delivered_at"]
    wait_for(
        lambda: EmailLog.get_or_none(EmailLog.order == order_id, EmailLog.kind == "delivered"),
        what="the delivered email",
    )


def test_status_endpoint_etag_and_304(client: Any, worker: Any) -> None:
    headers = register_shopper(client, "ana@example.com")
    order_id, _ = reserved_order(client, headers)
    first = client.get(f"{API}/orders/{order_id}/status", headers=headers)
    etag = first.headers["ETag"]
    assert set(first.json()) == {"id", "order_number", "status", "payment_status", "version", "updated_at"}
    unchanged = client.get(f"{API}/orders/{order_id}/status", headers={**headers, "If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.headers["ETag"] == etag and unchanged.content == b""
    client.post(f"{API}/orders/{order_id}/pay", json={"token": "tok_ok"}, headers=headers)
    wait_status(client, headers, order_id, "confirmed")
    changed = client.get(f"{API}/orders/{order_id}/status", headers={**headers, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_status_long_poll_answers_on_change_or_304_at_the_deadline(live_server: Any, worker: Any) -> None:
    import threading

    import httpx2 as httpx

    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        headers = register_shopper(http, "ana@example.com")
        order_id, _ = reserved_order(http, headers)
        url = f"{API}/orders/{order_id}/status"
        etag = http.get(url, headers=headers).headers["ETag"]
        unchanged = http.get(url, params={"wait": "1"}, headers={**headers, "If-None-Match": etag})
        assert unchanged.status_code == 304 and unchanged.headers["ETag"] == etag

        answers: list[Any] = []
        waiting = threading.Thread(
            target=lambda: answers.append(
                http.get(url, params={"wait": "20"}, headers={**headers, "If-None-Match": etag})
            )
        )
        waiting.start()
        http.post(f"{API}/orders/{order_id}/pay", json={"token": "tok_ok"}, headers=headers)
        waiting.join(30)
    [answer] = answers
    assert answer.status_code == 200 and answer.headers["ETag"] != etag
    assert answer.json()["status"] in {"reserved", "confirmed"}  # woken by the first change after paying


def test_status_endpoint_checks_the_token_in_its_one_query(client: Any, worker: Any, make_user: Any) -> None:
    headers = register_shopper(client, "ana@example.com")
    _, admin = make_user(email="boss@example.com", admin=True)
    order_id, _ = reserved_order(client, headers)
    assert client.get(f"{API}/orders/{order_id}/status", headers=admin).status_code == 200  # admins see all
    assert client.get(f"{API}/orders/{order_id}/status").json()["error"]["code"] == "not_authenticated"
    client.post(f"{API}/auth/logout", headers=headers)
    revoked = client.get(f"{API}/orders/{order_id}/status", headers=headers)
    assert revoked.status_code == 401 and revoked.json()["error"]["code"] == "not_authenticated"


def test_other_users_orders_are_404(client: Any, worker: Any) -> None:
    owner = register_shopper(client, "ana@example.com")
    stranger = register_shopper(client, "eve@example.com")
    order_id, _ = reserved_order(client, owner)
    for method, path, body in [
        ("GET", f"/orders/{order_id}", None),
        ("GET", f"/orders/{order_id}/status", None),
        ("POST", f"/orders/{order_id}/pay", {"token": "tok_ok"}),
        ("DELETE", f"/orders/{order_id}", None),
    ]:
        response = client.request(method, API + path, json=body, headers=stranger)
        assert response.status_code == 404 and response.json()["error"]["code"] == "order_not_found", path


@contextmanager
def tasks_published() -> Iterator[list[str]]:
    """The names of the tasks this process publishes meanwhile, seen through Celery's own signal
    (whichever worker consumes them)."""
    from celery.signals import before_task_publish

    published: list[str] = []

    def seen(sender: str | None = None, **_: Any) -> None:
        published.append(str(sender))

    before_task_publish.connect(seen, weak=False)
    try:
        yield published
    finally:
        before_task_publish.disconnect(seen)


def test_the_202_is_rendered_before_the_reservation_is_published(client: Any) -> None:
    """POST /orders renders the committed order and only then publishes reserve_stock, so a warm
    worker can never move it before the answer is built: the 202 always says pending. A failpoint
    holds the request just before rendering; nothing may have been published by then. (Publishes
    are seen through Celery's own signal in this process, whichever worker consumes them.)"""
    from concurrent.futures import ThreadPoolExecutor

    from models.infra import failpoints

    headers = register_shopper(client, "rio@example.com")
    item = product(stock=5)
    fill_cart(client, "session-held", {item.id: 1})
    failpoints.arm("orders.before_render", "hold")
    with tasks_published() as published, ThreadPoolExecutor(1) as pool:
        answer = pool.submit(place, client, headers, "session-held")
        wait_for(lambda: failpoints.held("orders.before_render"), what="the request to reach the render")
        published_while_held = list(published)
        failpoints.release("orders.before_render")
        response = answer.result(timeout=30)
    assert published_while_held == []
    assert response.status_code == 202 and response.json()["status"] == "pending"
    assert published == ["pipeline.reserve_stock"]  # published once the answer was built


def test_an_order_whose_answer_failed_after_its_commit_is_reserved_all_the_same(
    app: Any, client: Any, worker: Any
) -> None:
    """PostgreSQL gone right after an order's commit: its 202 cannot be rendered and the shopper
    gets an error, but the order exists. Its reservation is published anyway (not left for the
    re-drive, 30 s later), and the shopper's retry with the same Idempotency-Key, answered with
    that order while it is still pending, asks for its reservation again."""
    from starlette.testclient import TestClient

    from models.infra import failpoints

    headers = register_shopper(client, "ines@example.com")
    item = product(stock=5)
    fill_cart(client, "session-cut", {item.id: 1})
    failpoints.arm("orders.before_render", "raise")
    with tasks_published() as published:
        with TestClient(app, raise_server_exceptions=False) as unchecked:  # an injected failure's 500 is undocumented
            failed = place(unchecked, headers, "session-cut", key="key-cut-short")
        reserved_after_the_failure = list(published)
        retried = place(client, headers, "session-cut", key="key-cut-short")
    assert failed.status_code == 500
    assert reserved_after_the_failure == ["pipeline.reserve_stock"]
    assert retried.status_code == 202, retried.text
    orders = list(Order.select())
    assert [o.id for o in orders] == [retried.json()["id"]]  # one order, never a second
    if retried.json()["status"] == "pending":  # a worker may have reserved it meanwhile
        assert published == ["pipeline.reserve_stock"] * 2
    wait_for(lambda: status_of(client, headers, orders[0].id)["status"] == "reserved", what="the reservation")
