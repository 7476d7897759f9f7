"""GET /admin/dashboard: revenue and orders per Asia/Seoul day, orders by status, best sellers, low
stock and the pipeline's waiting orders, in one call; staff only; the window is checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from models.tables import Order, OrderItem, Product, Shipment, User, utcnow
from tests.support import assert_error

API = "/api/v1/admin/dashboard"
N = 0


def order(
    user: User,
    status: str,
    created: datetime,
    paid: datetime | None = None,
    lines: tuple[Any, ...] = (),
    payment_status: str | None = None,
) -> Order:
    global N
    N += 1
    total = sum(price * qty for _, price, qty in lines)
    row = Order.create(
        order_number=f"D-{N}",
        user=user.id,
        status=status,
        currency="KRW",
        subtotal=total,
        total=total,
        shipping_address={},
        shipping_method="standard",
        payment_method="dummy",
        payment_gateway="dummy",
        created_at=created,
        updated_at=created,
        paid_at=paid,
        payment_status=payment_status or ("paid" if paid else "pending"),
    )
    for product, price, qty in lines:
        OrderItem.create(
            order=row.id,
            product=product.id,
            product_name=product.name,
            product_sku=product.sku,
            unit_price=price,
            quantity=qty,
            subtotal=price * qty,
        )
    return row


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_the_figures_of_a_window_of_seoul_days(client: Any, admin_headers: dict[str, str], make_user: Any) -> None:
    user, _ = make_user()
    tee = Product.create(
        sku="TEE", name="Tee", slug="tee", price=10000, stock_quantity=2, low_stock_threshold=5, tags=[], images=[]
    )
    coat = Product.create(sku="COAT", name="Coat", slug="coat", price=100000, stock_quantity=50, tags=[], images=[])
    Product.create(sku="GONE", name="Sold out", slug="gone", price=1, stock_quantity=0, tags=[], images=[])
    Product.create(
        sku="FILE", name="E-book", slug="ebook", price=1, stock_quantity=0, track_inventory=False, tags=[], images=[]
    )
    # 2026-11-10 14:59:59 UTC is 23:59:59 on the 10th in Seoul; a second later it is the 11th there.
    order(user, "confirmed", utc("2026-11-10T10:00:00"), utc("2026-11-10T14:59:59"), ((tee, 10000, 3),))
    order(user, "delivered", utc("2026-11-10T12:00:00"), utc("2026-11-10T15:00:00"), ((coat, 100000, 1),))
    order(user, "shipped", utc("2026-11-11T01:00:00"), utc("2026-11-11T01:00:00"), ((tee, 10000, 5), (coat, 100000, 1)))
    order(
        user,
        "cancelled",
        utc("2026-11-11T02:00:00"),
        utc("2026-11-11T02:00:00"),
        ((coat, 100000, 9),),
        payment_status="refunded",
    )  # money given back: no revenue, no best seller
    order(user, "pending", utc("2026-11-11T03:00:00"))
    order(user, "confirmed", utc("2026-11-09T10:00:00"), utc("2026-11-09T10:00:00"), ((coat, 100000, 7),))  # before
    response = client.get(API, params={"from": "2026-11-10", "to": "2026-11-12"}, headers=admin_headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["from"], body["to"], body["timezone"], body["currency"]) == (
        "2026-11-10",
        "2026-11-12",
        "Asia/Seoul",
        "KRW",
    )
    assert body["revenue_by_day"] == [
        {"day": "2026-11-10", "orders": 1, "revenue": 30000},
        {"day": "2026-11-11", "orders": 2, "revenue": 250000},
        {"day": "2026-11-12", "orders": 0, "revenue": 0},
    ]
    assert body["totals"] == {"orders": 3, "revenue": 280000}
    assert body["orders_by_status"] == {"confirmed": 1, "delivered": 1, "shipped": 1, "cancelled": 1, "pending": 1}
    assert body["top_products"] == [
        {"product_id": tee.id, "name": "Tee", "units": 8, "revenue": 80000},
        {"product_id": coat.id, "name": "Coat", "units": 2, "revenue": 200000},
    ]
    assert [p["product_id"] for p in body["top_products_by_revenue"]] == [coat.id, tee.id]
    assert [p["sku"] for p in body["low_stock"]] == ["GONE", "TEE"] and body["low_stock_total"] == 2


def test_the_pipeline_shows_what_waits_and_for_how_long(
    client: Any, admin_headers: dict[str, str], make_user: Any
) -> None:
    user, _ = make_user()
    now = utcnow()
    order(user, "pending", now - timedelta(seconds=30))
    order(user, "pending", now - timedelta(seconds=5))
    order(user, "confirmed", now - timedelta(hours=2), now)
    order(user, "delivered", now - timedelta(days=3), now)
    pipeline = client.get(API, headers=admin_headers).json()["pipeline"]
    assert set(pipeline["waiting"]) == {"pending", "reserved", "confirmed", "shipped"}
    assert pipeline["waiting"]["pending"]["count"] == 2 and 30 <= pipeline["waiting"]["pending"]["oldest_age_s"] < 600
    assert pipeline["waiting"]["confirmed"]["count"] == 1
    assert pipeline["waiting"]["confirmed"]["oldest_age_s"] >= 7200
    assert pipeline["waiting"]["reserved"] == {"count": 0, "oldest_age_s": None}
    assert pipeline["payments_flagged"] == 0 and pipeline["tracking_failing"] == 0
    flagged = order(user, "confirmed", now, now)
    Order.update(payment_flag="the gateway says refunded", payment_flagged_at=now).where(
        Order.id == flagged.id
    ).execute()
    Shipment.create(order=flagged.id, failures=3, last_error="carrier timeout")  # three failed polls in a row
    Shipment.create(order=order(user, "shipped", now, now).id, failures=1)  # one failure: not yet
    pipeline = client.get(API, headers=admin_headers).json()["pipeline"]
    assert (pipeline["payments_flagged"], pipeline["tracking_failing"]) == (1, 1)


def test_the_default_window_is_the_last_thirty_seoul_days(client: Any, admin_headers: dict[str, str]) -> None:
    body = client.get(API, headers=admin_headers).json()
    days = [d["day"] for d in body["revenue_by_day"]]
    assert len(days) == 30 and days[-1] == body["to"] and days[0] == body["from"]
    assert body["to"] == datetime.now(UTC).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Seoul")).date().isoformat()
    only_from = client.get(API, params={"from": "2026-01-01"}, headers=admin_headers).json()
    assert (only_from["from"], only_from["to"]) == ("2026-01-01", "2026-01-30")


def test_the_dashboard_is_for_staff_and_checks_its_window(
    client: Any, admin_headers: dict[str, str], user_headers: dict[str, str]
) -> None:
    assert_error(client.get(API), 401, "not_authenticated")
    assert_error(client.get(API, headers=user_headers), 403, "forbidden")
    for params in (
        {"from": "2026-11-12", "to": "2026-11-10"},
        {"from": "2025-01-01", "to": "2026-11-10"},
        {"from": "yesterday"},
        {"to": "2026-02-30"},
    ):
        error = assert_error(client.get(API, params=params, headers=admin_headers), 422, "validation_error")
        assert error["details"]["fields"], error
