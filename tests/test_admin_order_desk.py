"""The staff's order desk: GET /admin/orders lists every customer's and guest's orders, newest first,
filtered by status, payment status and dates and searched by order number, email or recipient;
GET /admin/orders/{id} shows the customer, payment references, the timeline with task ids and the
emails; POST /admin/orders/{id}/redrive sends what the order's state says is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from models.tables import EmailLog, Order, OrderEvent, OrderItem, Product, User
from tests.support import ADDRESS, assert_error, checkout_body, wait_for

API = "/api/v1/admin/orders"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def order(
    number: str,
    user_id: int | None = None,
    guest: str | None = None,
    recipient: str = "Kim Minji",
    status: str = "pending",
    payment_status: str = "pending",
    days: int = 0,
    **extra: Any,
) -> Order:
    created = T0 + timedelta(days=days)
    row = Order.create(
        order_number=number,
        user=user_id,
        guest_email=guest,
        guest_name="Guest" if guest else None,
        guest_phone="010-0000-0000" if guest else None,
        status=status,
        payment_status=payment_status,
        currency="KRW",
        subtotal=10000,
        total=13000,
        shipping_fee=3000,
        shipping_address={**ADDRESS, "recipient_name": recipient},
        shipping_method="standard",
        payment_method="dummy",
        payment_gateway="dummy",
        created_at=created,
        updated_at=created,
        **extra,
    )
    OrderItem.create(order=row.id, product_name="Tee", product_sku="TEE", unit_price=5000, quantity=2, subtotal=10000)
    return row


@pytest.fixture
def desk(make_user: Any) -> dict[str, Any]:
    ana, _ = make_user(email="ana.kim@example.com")
    bo, _ = make_user(email="bo@example.com")
    return {
        "a": order("ORD-20261120-AAAA1111", ana.id, recipient="Ana Kim", days=0),
        "b": order(
            "ORD-20261121-BBBB2222",
            bo.id,
            recipient="박보영",
            status="confirmed",
            payment_status="paid",
            days=1,
            paid_at=T0 + timedelta(days=1),
        ),
        "c": order(
            "ORD-20261122-CCCC3333", guest="guest.lee@example.com", recipient="Lee 100%", days=2, status="reserved"
        ),
        "d": order(
            "ORD-20261123-DDDD4444", ana.id, recipient="Ana Kim", days=3, status="cancelled", payment_status="refunded"
        ),
    }


def numbers(client: Any, headers: dict[str, str], **params: Any) -> list[str]:
    response = client.get(API, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [o["order_number"][-8:] for o in response.json()["items"]]


def test_only_admins(client: Any, user_headers: dict[str, str]) -> None:
    assert_error(client.get(API), 401, "not_authenticated")
    assert_error(client.get(API, headers=user_headers), 403, "forbidden")
    assert_error(client.get(f"{API}/1", headers=user_headers), 403, "forbidden")
    assert_error(client.post(f"{API}/1/redrive", headers=user_headers), 403, "forbidden")


def test_every_customers_orders_newest_first_with_filters(
    client: Any, admin_headers: dict[str, str], desk: dict[str, Any]
) -> None:
    page = client.get(API, headers=admin_headers).json()
    assert [o["order_number"][-8:] for o in page["items"]] == ["DDDD4444", "CCCC3333", "BBBB2222", "AAAA1111"]
    assert (page["total"], page["pages"], page["page"], page["page_size"]) == (4, 1, 1, 20)
    guest = page["items"][1]
    assert (
        guest
        | {
            "guest": True,
            "user_id": None,
            "email": "guest.lee@example.com",
            "recipient_name": "Lee 100%",
            "item_count": 2,
            "total": 13000,
        }
        == guest
    )
    assert page["items"][0]["email"] == "ana.kim@example.com" and page["items"][0]["guest"] is False
    assert numbers(client, admin_headers, status="confirmed") == ["BBBB2222"]
    assert numbers(client, admin_headers, payment_status="refunded") == ["DDDD4444"]
    assert numbers(client, admin_headers, created_from="2026-11-21", created_to="2026-11-22") == [
        "CCCC3333",
        "BBBB2222",
    ]
    assert numbers(client, admin_headers, created_from="2026-11-22T12:00:00+00:00") == ["DDDD4444", "CCCC3333"]
    assert numbers(client, admin_headers, created_to="2026-11-20") == ["AAAA1111"]
    assert numbers(client, admin_headers, status="pending", created_to="2026-11-21") == ["AAAA1111"]
    assert numbers(client, admin_headers, page_size=3, page=2) == ["AAAA1111"]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("ord-20261121", ["BBBB2222"]),  # the start of an order number, any case
        ("ORD-20261123-DDDD4444", ["DDDD4444"]),
        ("ANA.KIM@", ["DDDD4444", "AAAA1111"]),  # an account's email
        ("guest.lee", ["CCCC3333"]),  # a guest's email
        ("ana k", ["DDDD4444", "AAAA1111"]),  # a recipient's name
        ("박보", ["BBBB2222"]),
        ("lee 100%", ["CCCC3333"]),
        ("lee 1_0", []),  # '%' and '_' are characters, not wildcards
        ("kim", []),  # the start, not the middle
        ("nobody", []),
    ],
)
def test_search(client: Any, admin_headers: dict[str, str], desk: dict[str, Any], q: str, expected: list[str]) -> None:
    assert numbers(client, admin_headers, q=q) == expected


def test_bad_filters_are_422(client: Any, admin_headers: dict[str, str]) -> None:
    for params, field in [
        ({"status": "lost"}, "status"),
        ({"payment_status": "maybe"}, "payment_status"),
        ({"created_from": "yesterday"}, "created_from"),
        ({"page_size": "101"}, "page_size"),
        ({"created_from": "2026-11-22", "created_to": "2026-11-21"}, "created_to"),
        ({"q": "x" * 255}, "q"),
    ]:
        fields = assert_error(client.get(API, params=params, headers=admin_headers), 422, "validation_error")[
            "details"
        ]["fields"]
        assert field in fields, (params, fields)
    assert client.get(API, params={"_": "1", "status": ""}, headers=admin_headers).status_code == 200


def test_one_order_with_customer_payment_timeline_and_emails(
    client: Any, admin_headers: dict[str, str], desk: dict[str, Any]
) -> None:
    b = desk["b"]
    Order.update(payment_transaction_id="dummy_ch_42", payment_proof={"token": "tok_ok"}, paid_at=T0).where(
        Order.id == b.id
    ).execute()
    OrderEvent.create(
        order=b.id,
        type="payment_captured",
        from_status="reserved",
        to_status="confirmed",
        task_id="task-123",
        detail={"transaction_id": "dummy_ch_42"},
    )
    EmailLog.create(
        order=b.id,
        kind="confirmation",
        recipient="bo@example.com",
        message_id="<c.1@x>",
        status="sent",
        attempts=1,
        sent_at=T0,
    )
    found = client.get(f"{API}/{b.id}", headers=admin_headers).json()
    assert found["customer"] == {
        "user_id": b.user_id,
        "email": "bo@example.com",
        "full_name": User.get_by_id(b.user_id).full_name,
        "phone": None,
        "guest": False,
    }
    assert (
        found["payment"] | {"transaction_id": "dummy_ch_42", "proof": {"token": "tok_ok"}, "gateway": "dummy"}
        == found["payment"]
    )
    assert found["events"][-1] | {"type": "payment_captured", "task_id": "task-123"} == found["events"][-1]
    assert [(e["kind"], e["recipient"], e["status"]) for e in found["emails"]] == [
        ("confirmation", "bo@example.com", "sent")
    ]
    assert found["items"][0]["product_name"] == "Tee" and found["shipping_address"]["recipient_name"] == "박보영"
    guest = client.get(f"{API}/{desk['c'].id}", headers=admin_headers).json()
    assert guest["customer"] == {
        "user_id": None,
        "email": "guest.lee@example.com",
        "full_name": "Guest",
        "phone": "010-0000-0000",
        "guest": True,
    }
    assert_error(client.get(f"{API}/999999999", headers=admin_headers), 404, "order_not_found")


def test_redrive_sends_what_is_due(client: Any, admin_headers: dict[str, str], desk: dict[str, Any]) -> None:
    pending, confirmed, cancelled = desk["a"], desk["b"], desk["d"]
    # Changed just now (the re-drive leaves emails of orders untouched for EMAIL_HORIZON alone).
    Order.update(updated_at=datetime.now(UTC)).where(Order.id == confirmed.id).execute()
    sent = client.post(f"{API}/{pending.id}/redrive", headers=admin_headers)
    assert sent.status_code == 200, sent.text
    assert sent.json() == {
        "sent": [{"command": "ReserveStock", "task": "pipeline.reserve_stock", "order_id": pending.id}]
    }
    # Confirmed and paid, but no confirmation email was sent: it is due, however recent the change.
    assert client.post(f"{API}/{confirmed.id}/redrive", headers=admin_headers).json() == {
        "sent": [
            {
                "command": "SendOrderEmail",
                "task": "pipeline.send_order_email",
                "order_id": confirmed.id,
                "kind": "confirmation",
            }
        ]
    }
    assert client.post(f"{API}/{cancelled.id}/redrive", headers=admin_headers).json() == {"sent": []}
    timeline = client.get(f"{API}/{pending.id}", headers=admin_headers).json()["events"]
    redriven = [e for e in timeline if e["type"] == "redriven"]  # a running worker may have moved it on since
    assert len(redriven) == 1 and redriven[0]["detail"]["by"] == "admin"
    assert_error(client.post(f"{API}/999999999/redrive", headers=admin_headers), 404, "order_not_found")


def test_redrive_moves_a_stuck_order_with_a_real_worker(
    client: Any, admin_headers: dict[str, str], worker: Any, make_user: Any
) -> None:
    """An order whose reservation message was lost (here: never sent) moves on as soon as an operator asks."""
    user, headers = make_user(email="stuck@example.com")
    item = Product.create(sku="STUCK", name="Stuck", slug="stuck", price=5000, stock_quantity=5, tags=[], images=[])
    stuck = Order.create(
        order_number="ORD-20261130-STUCK001",
        user=user.id,
        currency="KRW",
        subtotal=5000,
        total=8000,
        shipping_fee=3000,
        shipping_address=ADDRESS,
        shipping_method="standard",
        payment_method="dummy",
        payment_gateway="dummy",
    )
    OrderItem.create(
        order=stuck.id,
        product=item.id,
        product_name="Stuck",
        product_sku="STUCK",
        unit_price=5000,
        quantity=1,
        subtotal=5000,
    )
    assert (
        client.post(f"{API}/{stuck.id}/redrive", headers=admin_headers).json()["sent"][0]["command"] == "ReserveStock"
    )
    wait_for(lambda: Order.get_by_id(stuck.id).status == "reserved", what="the re-driven reservation")
    detail = client.get(f"{API}/{stuck.id}", headers=admin_headers).json()
    reserved = next(e for e in detail["events"] if e["type"] == "stock_reserved")
    assert reserved["task_id"]
    assert Product.get_by_id(item.id).stock_quantity == 4
    client.post("/api/v1/cart/items", json={"product_id": item.id, "quantity": 1}, headers={"X-Session-ID": "s-desk01"})
    assert (
        client.post("/api/v1/orders", json=checkout_body(), headers={**headers, "X-Session-ID": "s-desk01"}).status_code
        == 202
    )


@pytest.mark.parametrize("target", ["pending", "reserved", "confirmed", "failed", "expired"])
def test_an_order_status_the_admin_may_not_set_is_an_invalid_transition(
    client: Any, admin_headers: dict[str, str], desk: dict[str, Any], target: str
) -> None:
    """PATCH /orders/{id} with an order status outside the admin's moves (ship, deliver, cancel) is
    the contract's 409 invalid_transition, not a 422: even one the state machine has an arrow for
    (pending -> reserved, reserved -> confirmed, ...), which only the pipeline may take, with its
    stock and payment. The order is left as it was."""
    for row in desk.values():
        before = Order.get_by_id(row.id)
        response = client.patch(f"/api/v1/orders/{row.id}", json={"status": target}, headers=admin_headers)
        error = assert_error(response, 409, "invalid_transition")
        assert error["details"] == {"status": before.status, "target": target}
        after = Order.get_by_id(row.id)
        assert (after.status, after.version) == (before.status, before.version)
    assert_error(
        client.patch("/api/v1/orders/999999", json={"status": target}, headers=admin_headers), 404, "order_not_found"
    )


def test_a_status_that_is_no_order_status_is_a_validation_error(
    client: Any, admin_headers: dict[str, str], desk: dict[str, Any]
) -> None:
    for status in ("refunded", "Shipped", "", None, 3):
        response = client.patch(f"/api/v1/orders/{desk['b'].id}", json={"status": status}, headers=admin_headers)
        assert "status" in assert_error(response, 422, "validation_error")["details"]["fields"]


def test_cancelling_a_cancelled_order_is_an_invalid_transition_for_the_admin(
    client: Any, admin_headers: dict[str, str], desk: dict[str, Any]
) -> None:
    """The admin's PATCH is bound to the contract's transitions, and cancelled -> cancelled is none
    (as shipping a shipped order is not): 409 invalid_transition, nothing recorded or sent again.
    The customer's DELETE stays repeatable (tests/test_checkout_pipeline_flow.py)."""
    from models import events
    from models.orders import pipeline
    from models.tables import utcnow

    cancelled = Order.get_by_id(desk["d"].id)
    response = client.patch(f"/api/v1/orders/{cancelled.id}", json={"status": "cancelled"}, headers=admin_headers)
    error = assert_error(response, 409, "invalid_transition")
    assert error["details"] == {"status": "cancelled", "target": "cancelled"}
    assert Order.get_by_id(cancelled.id).version == cancelled.version
    assert not OrderEvent.select().where(OrderEvent.order == cancelled.id).exists()
    # The first cancellation by the admin goes through, then the second is refused the same way.
    pending = desk["a"]
    with events.collecting() as emitted:
        assert pipeline.admin_update(pending.id, "cancelled", None, None, "user:1").status == "cancelled"
    assert emitted and Order.get_by_id(pending.id).cancelled_at <= utcnow()
    again = client.patch(f"/api/v1/orders/{pending.id}", json={"status": "cancelled"}, headers=admin_headers)
    assert_error(again, 409, "invalid_transition")
    assert OrderEvent.select().where(OrderEvent.order == pending.id, OrderEvent.type == "order_cancelled").count() == 1
