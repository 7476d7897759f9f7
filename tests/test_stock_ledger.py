"""The stock ledger: every stock change (a product's opening stock, reservations, releases, staff's
restocks, adjustments and returns, the catalogue's PATCH) is a row with its reason, actor and order;
staff read it at /admin/products/{id}/stock-ledger and change stock at /admin/products/{id}/stock;
a low-stock alert goes out once per crossing of the threshold, not once per order."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from models import events
from models.cart.store import cart_key
from models.catalog import queries as catalog
from models.events import AlertLowStock
from models.infra.redis_client import get_redis
from models.infra.settings import get_settings
from models.mail import send as mail
from models.orders import inventory, payment_steps, pipeline
from models.orders.checkout import place_order
from models.stock import admin as stock
from models.stock import ledger
from models.tables import Order, Product, StockEntry, User, utcnow
from tests.smtp_sink import SMTPSink
from tests.support import assert_error, checkout_body

API = "/api/v1"


def new_product(client: Any, admin_headers: dict[str, str], stock: int = 10, threshold: int = 3) -> dict[str, Any]:
    response = client.post(
        f"{API}/products",
        json={
            "sku": "LEDGER-1",
            "name": "Ledger tee",
            "price": 10000,
            "stock_quantity": stock,
            "low_stock_threshold": threshold,
        },
        headers=admin_headers,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def place(user: User, product_id: int, quantity: int) -> Order:
    session = "s-" + uuid.uuid4().hex[:12]
    get_redis().hset(cart_key(session), mapping={str(product_id): quantity})
    with events.collecting():
        return place_order(user, session, checkout_body(), None).order


def step(fn: Any, *args: Any) -> list[events.Message]:
    with events.collecting() as emitted:
        fn(*args)
    return emitted


def ledger_of(client: Any, admin_headers: dict[str, str], product_id: int, **params: Any) -> dict[str, Any]:
    response = client.get(f"{API}/admin/products/{product_id}/stock-ledger", params=params, headers=admin_headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def assert_whole(product_id: int) -> None:
    """The ledger sums to the stock on hand, and each row's stock_after follows from the one before."""
    entries = list(StockEntry.select().where(StockEntry.product == product_id).order_by(StockEntry.id))
    running = 0
    for entry in entries:
        running += entry.delta
        assert entry.stock_after == running, [(e.reason, e.delta, e.stock_after) for e in entries]
    assert running == Product.get_by_id(product_id).stock_quantity
    assert ledger.discrepancies() == []


def test_every_change_is_a_row_with_reason_actor_and_order(
    client: Any, admin_headers: dict[str, str], make_user: Any
) -> None:
    admin_id = client.get(f"{API}/auth/me", headers=admin_headers).json()["id"]
    product = new_product(client, admin_headers, stock=10)
    user, _ = make_user()
    kept, dropped = place(user, product["id"], 2), place(user, product["id"], 3)
    step(pipeline.reserve_stock, kept.id)
    step(pipeline.reserve_stock, dropped.id)
    step(pipeline.cancel, dropped.id, user)
    expiring = place(user, product["id"], 1)
    step(pipeline.reserve_stock, expiring.id)
    Order.update(reserved_until=utcnow() - timedelta(seconds=1)).where(Order.id == expiring.id).execute()
    step(pipeline.expire_reservations)
    declined = place(user, product["id"], 1)
    step(pipeline.reserve_stock, declined.id)
    step(payment_steps.submit, declined.id, user, {"token": "tok_decline"})
    step(payment_steps.capture, declined.id)
    restocked = client.post(
        f"{API}/admin/products/{product['id']}/stock",
        json={"delta": 5, "reason": "restock", "note": "PO-1182"},
        headers=admin_headers,
    )
    assert restocked.status_code == 200, restocked.text
    assert restocked.json()["stock_quantity"] == 13
    assert (
        restocked.json()["entry"]
        | {
            "delta": 5,
            "stock_after": 13,
            "reason": "restock",
            "note": "PO-1182",
            "actor": f"user:{admin_id}",
            "order_id": None,
        }
        == restocked.json()["entry"]
    )
    returned = client.post(
        f"{API}/admin/products/{product['id']}/stock",
        json={"delta": 1, "reason": "return", "order_id": kept.id},
        headers=admin_headers,
    ).json()
    assert returned["entry"]["order_id"] == kept.id
    counted = client.post(
        f"{API}/admin/products/{product['id']}/stock",
        json={"set": 9, "reason": "adjustment", "note": "stock take"},
        headers=admin_headers,
    ).json()
    assert counted["stock_quantity"] == 9 and counted["entry"]["delta"] == -5
    same = client.post(
        f"{API}/admin/products/{product['id']}/stock", json={"set": 9, "reason": "adjustment"}, headers=admin_headers
    ).json()
    assert same == {"stock_quantity": 9, "entry": None}
    patched = client.patch(f"{API}/products/{product['id']}", json={"stock_quantity": 12}, headers=admin_headers)
    assert patched.status_code == 200 and patched.json()["stock_quantity"] == 12

    page = ledger_of(client, admin_headers, product["id"])
    assert page["stock_quantity"] == 12 and page["total"] == len(page["items"]) == 12
    rows = [(e["reason"], e["delta"], e["stock_after"], e["order_id"], e["actor"]) for e in reversed(page["items"])]
    user_actor, admin_actor = f"user:{user.id}", f"user:{admin_id}"
    assert rows == [
        ("initial", 10, 10, None, admin_actor),
        ("reservation", -2, 8, kept.id, "task:pipeline.reserve_stock"),
        ("reservation", -3, 5, dropped.id, "task:pipeline.reserve_stock"),
        ("release", 3, 8, dropped.id, user_actor),
        ("reservation", -1, 7, expiring.id, "task:pipeline.reserve_stock"),
        ("release", 1, 8, expiring.id, "task:beat.expire_reservations"),
        ("reservation", -1, 7, declined.id, "task:pipeline.reserve_stock"),
        ("release", 1, 8, declined.id, "task:pipeline.capture_payment"),
        ("restock", 5, 13, None, admin_actor),
        ("return", 1, 14, kept.id, admin_actor),
        ("adjustment", -5, 9, None, admin_actor),
        ("adjustment", 3, 12, None, admin_actor),
    ]
    assert_whole(product["id"])
    second = ledger_of(client, admin_headers, product["id"], page=2, page_size=5)
    assert [e["id"] for e in second["items"]] == [e["id"] for e in page["items"][5:10]] and second["pages"] == 3


def test_stock_changes_are_checked(
    client: Any, admin_headers: dict[str, str], user_headers: dict[str, str], make_user: Any
) -> None:
    product = new_product(client, admin_headers, stock=4)
    url = f"{API}/admin/products/{product['id']}/stock"
    error = assert_error(
        client.post(url, json={"delta": -5, "reason": "adjustment"}, headers=admin_headers), 409, "insufficient_stock"
    )
    assert error["details"]["stock_quantity"] == 4 and "Only 4 in stock" in error["message"]
    for body in (
        {"reason": "restock"},
        {"delta": 1, "set": 3, "reason": "adjustment"},
        {"delta": 0, "reason": "adjustment"},
        {"delta": -1, "reason": "restock"},
        {"set": 5, "reason": "return"},
        {"delta": 1, "reason": "theft"},
        {"delta": "1", "reason": "restock"},
        {"set": -1, "reason": "adjustment"},
        {"delta": 10**7, "reason": "restock"},
        {"delta": 1, "reason": "restock", "note": ""},
        {"delta": 1, "reason": "restock", "extra": 1},
    ):
        assert_error(client.post(url, json=body, headers=admin_headers), 422, "validation_error")
    assert_error(
        client.post(
            f"{API}/admin/products/999999/stock", json={"delta": 1, "reason": "restock"}, headers=admin_headers
        ),
        404,
        "product_not_found",
    )
    assert_error(
        client.post(url, json={"delta": 1, "reason": "return", "order_id": 999999}, headers=admin_headers),
        404,
        "order_not_found",
    )
    assert_error(
        client.get(f"{API}/admin/products/999999/stock-ledger", headers=admin_headers), 404, "product_not_found"
    )
    assert_error(
        client.get(f"{API}/admin/products/{product['id']}/stock-ledger?page_size=500", headers=admin_headers),
        422,
        "validation_error",
    )
    for method, path, body in (
        ("POST", url, {"delta": 1, "reason": "restock"}),
        ("GET", f"{API}/admin/products/{product['id']}/stock-ledger", None),
    ):
        kwargs = {"json": body} if body else {}
        assert_error(client.request(method, path, **kwargs), 401, "not_authenticated")
        assert_error(client.request(method, path, headers=user_headers, **kwargs), 403, "forbidden")
    assert Product.get_by_id(product["id"]).stock_quantity == 4
    assert_whole(product["id"])


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[SMTPSink]:
    sink = SMTPSink().start()
    for name, value in (("SMTP_HOST", "127.0.0.1"), ("SMTP_PORT", str(sink.port)), ("OPS_EMAIL", "ops@example.com")):
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield sink
    sink.stop()
    monkeypatch.undo()
    get_settings.cache_clear()


def test_a_low_stock_alert_goes_out_once_per_crossing(
    client: Any, admin_headers: dict[str, str], make_user: Any, smtp: SMTPSink
) -> None:
    product = new_product(client, admin_headers, stock=9, threshold=5)
    user, _ = make_user()

    def reserve(quantity: int) -> list[AlertLowStock]:
        order = place(user, product["id"], quantity)
        return [m for m in step(pipeline.reserve_stock, order.id) if isinstance(m, AlertLowStock)]

    assert reserve(2) == []  # 9 -> 7
    [crossed] = reserve(2)  # 7 -> 5: at the threshold
    assert reserve(1) == [] and reserve(1) == []  # 5 -> 4 -> 3: already under it
    assert mail.send_low_stock_alert(crossed.product_id, crossed.entry_id) is True
    assert mail.send_low_stock_alert(crossed.product_id, crossed.entry_id) is False  # a redelivered task
    client.post(
        f"{API}/admin/products/{product['id']}/stock", json={"delta": 10, "reason": "restock"}, headers=admin_headers
    )  # 13: above it again
    [again] = reserve(8)  # 13 -> 5: a second crossing, a second email
    assert again.entry_id != crossed.entry_id
    assert mail.send_low_stock_alert(again.product_id, again.entry_id) is True
    assert len(smtp.messages) == 2 and all("LEDGER-1" in m["Subject"] for m in smtp.messages)
    assert_whole(product["id"])


def test_staff_changes_and_the_catalogues_patch_alert_on_a_crossing_too(
    client: Any, admin_headers: dict[str, str], make_user: Any
) -> None:
    product = new_product(client, admin_headers, stock=20, threshold=5)
    assert [
        m for m in step(stock.adjust, product["id"], "user:1", "adjustment", -10) if isinstance(m, AlertLowStock)
    ] == []  # 20 -> 10
    [alert] = step(stock.adjust, product["id"], "user:1", "adjustment", None, 4)  # 10 -> 4: crossed
    assert isinstance(alert, AlertLowStock) and alert.product_id == product["id"]
    assert StockEntry.get_by_id(alert.entry_id).stock_after == 4
    assert step(stock.adjust, product["id"], "user:1", "restock", 10) == []  # 4 -> 14: above again
    with events.collecting() as emitted:
        catalog.update_product(product["id"], {"stock_quantity": 5}, "user:1")  # 14 -> 5: crossed again
    assert [type(m) for m in emitted] == [AlertLowStock]
    assert_whole(product["id"])


@pytest.mark.parametrize(
    "tracked_at_reservation", [False, True], ids=["untracked-then-tracked", "tracked-then-untracked"]
)
def test_an_order_gives_back_what_it_took_when_tracking_is_switched_meanwhile(
    client: Any, admin_headers: dict[str, str], make_user: Any, tracked_at_reservation: bool
) -> None:
    """Staff switching track_inventory while orders hold a product neither creates nor loses stock:
    a release gives back what the order's own ledger rows took, not what its lines would take under
    the flag as it is now (untracked then tracked: nothing was taken, nothing comes back; tracked
    then untracked: every unit comes back). Cancelled, expired and declined orders alike."""
    product_id = new_product(client, admin_headers, stock=5)["id"]

    def track(flag: bool) -> None:
        response = client.patch(f"{API}/products/{product_id}", json={"track_inventory": flag}, headers=admin_headers)
        assert response.status_code == 200 and response.json()["track_inventory"] is flag, response.text

    track(tracked_at_reservation)
    user, _ = make_user()
    cancelled, expiring, declined = place(user, product_id, 2), place(user, product_id, 1), place(user, product_id, 1)
    for order in (cancelled, expiring, declined):
        step(pipeline.reserve_stock, order.id)
        assert Order.get_by_id(order.id).status == "reserved"
    assert Product.get_by_id(product_id).stock_quantity == (1 if tracked_at_reservation else 5)

    track(not tracked_at_reservation)
    step(pipeline.cancel, cancelled.id, user)
    Order.update(reserved_until=utcnow() - timedelta(seconds=1)).where(Order.id == expiring.id).execute()
    step(pipeline.expire_reservations)
    step(payment_steps.submit, declined.id, user, {"token": "tok_decline"})
    step(payment_steps.capture, declined.id)
    assert [Order.get_by_id(o.id).status for o in (cancelled, expiring, declined)] == ["cancelled", "expired", "failed"]
    assert Product.get_by_id(product_id).stock_quantity == 5
    assert_whole(product_id)


def test_a_release_gives_back_only_what_the_order_still_holds(
    client: Any, admin_headers: dict[str, str], make_user: Any
) -> None:
    """A second release of the same order (whatever let it run twice) puts nothing more back, and a
    staff return that names the order is not mistaken for units the order holds."""
    product_id = new_product(client, admin_headers, stock=5)["id"]
    user, _ = make_user()
    order = place(user, product_id, 2)
    step(pipeline.reserve_stock, order.id)
    returned = client.post(
        f"{API}/admin/products/{product_id}/stock",
        json={"delta": 1, "reason": "return", "order_id": order.id},
        headers=admin_headers,
    )
    assert returned.status_code == 200, returned.text
    held = Order.get_by_id(order.id)
    with events.collecting():
        inventory.release(held, "system:test")
        inventory.release(held, "system:test")
    assert Product.get_by_id(product_id).stock_quantity == 6  # 5 - 2 + 1 returned + 2 released, once
    assert_whole(product_id)
