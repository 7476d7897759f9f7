"""GET /carriers, shipping an order with a carrier the shop knows (422 otherwise), the order's
`tracking` object, the operators' shipment list, and the customer's email language."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from models.infra.settings import get_settings
from models.tables import Order, Shipment, User, utcnow
from tests.order_factory import make_order
from tests.support import assert_error

API = "/api/v1"


def test_carriers_lists_the_korean_parcel_carriers_with_their_tracking_pages(client: Any) -> None:
    response = client.get(f"{API}/carriers")
    assert response.status_code == 200
    items = {c["code"]: c for c in response.json()["items"]}
    assert {"04", "01", "05", "08", "06"} <= set(items)
    assert items["04"]["name"] == "CJ대한통운" and items["01"]["name"] == "우체국택배"
    assert items["05"]["name"] == "한진택배" and items["08"]["name"] == "롯데택배" and items["06"]["name"] == "로젠택배"
    assert all("{number}" in c["tracking_url"] and c["tracking_url"].startswith("https://") for c in items.values())


def test_shipping_needs_a_known_carrier_and_a_tracking_number(client: Any, make_user: Any) -> None:
    user, headers = make_user()
    _, admin = make_user(email="admin@example.com", admin=True)
    order = make_order(user)
    url = f"{API}/orders/{order.id}"
    unknown = client.patch(
        url, json={"status": "shipped", "carrier": "CJ", "tracking_number": "640123456789"}, headers=admin
    )
    assert "carrier" in assert_error(unknown, 422, "validation_error")["details"]["fields"]
    missing = client.patch(url, json={"status": "shipped", "tracking_number": "640123456789"}, headers=admin)
    assert "carrier" in assert_error(missing, 422, "validation_error")["details"]["fields"]
    bad_number = client.patch(
        url, json={"status": "shipped", "carrier": "04", "tracking_number": "12/34"}, headers=admin
    )
    assert set(assert_error(bad_number, 422, "validation_error")["details"]["fields"]) == {"tracking_number"}
    refused = Order.get_by_id(order.id)
    assert refused.status == "confirmed" and refused.version == order.version
    assert Shipment.get_or_none(Shipment.order == order.id) is None
    assert client.get(url, headers=headers).json()["tracking"] is None

    shipped = client.patch(
        url, json={"status": "shipped", "carrier": "04", "tracking_number": "6401 2345 6789"}, headers=admin
    )
    assert shipped.status_code == 200, shipped.text
    body = shipped.json()
    assert (body["status"], body["carrier"], body["tracking_number"]) == ("shipped", "04", "640123456789")
    assert body["tracking"] == {
        "carrier": "04",
        "carrier_name": "CJ대한통운",
        "tracking_number": "640123456789",
        "url": "https://trace.cjlogistics.com/next/tracking.html?wblNo=640123456789",
        "level": None,
        "status_text": None,
        "delivered": False,
        "events": [],
    }
    assert client.get(url, headers=headers).json()["tracking"] == body["tracking"]
    # Polling begins within one interval, at a random point of it (a batch shipped together spreads out).
    shipment = Shipment.get_by_id(order.id)
    interval = timedelta(seconds=get_settings().tracking_poll_interval)
    assert utcnow() < shipment.next_poll_at <= utcnow() + interval
    again = client.patch(
        url, json={"status": "shipped", "carrier": "04", "tracking_number": "640123456789"}, headers=admin
    )
    assert_error(again, 409, "invalid_transition")


def test_operators_list_shipments_and_only_admins_may(client: Any, make_user: Any) -> None:
    user, headers = make_user()
    _, admin = make_user(email="admin@example.com", admin=True)
    ok, failing = make_order(user), make_order(user)
    for order in (ok, failing):
        assert (
            client.patch(
                f"{API}/orders/{order.id}",
                json={"status": "shipped", "carrier": "06", "tracking_number": f"5000000000{order.id}"},
                headers=admin,
            ).status_code
            == 200
        )
    Shipment.update(failures=3, last_error="104: 유효하지 않은 운송장번호 이거나 택배사 코드 입니다.").where(
        Shipment.order == failing.id
    ).execute()
    assert_error(client.get(f"{API}/admin/shipments", headers=headers), 403, "forbidden")
    assert_error(client.get(f"{API}/admin/shipments"), 401, "not_authenticated")
    everything = client.get(f"{API}/admin/shipments", headers=admin).json()
    assert everything["total"] == 2
    flagged = client.get(f"{API}/admin/shipments?failing=true", headers=admin).json()
    assert [s["order_id"] for s in flagged["items"]] == [failing.id]
    row = flagged["items"][0]
    assert row["failing"] is True and row["failures"] == 3 and row["last_error"].startswith("104")
    assert row["carrier_name"] == "로젠택배" and row["order_number"] == failing.order_number
    healthy = client.get(f"{API}/admin/shipments?failing=false", headers=admin).json()
    assert [s["order_id"] for s in healthy["items"]] == [ok.id]
    assert_error(client.get(f"{API}/admin/shipments?failing=maybe", headers=admin), 422, "validation_error")


def test_a_customer_chooses_the_language_of_their_emails(client: Any) -> None:
    assert_error(
        client.post(
            f"{API}/auth/register",
            json={"email": "x@example.com", "password": "long-enough-1", "full_name": "X", "locale": "fr"},
        ),
        422,
        "validation_error",
    )
    created = client.post(
        f"{API}/auth/register",
        json={"email": "en@example.com", "password": "long-enough-1", "full_name": "Emma", "locale": "en"},
    )
    assert created.status_code == 201 and created.json()["locale"] == "en"
    tokens = client.post(f"{API}/auth/login", json={"email": "en@example.com", "password": "long-enough-1"}).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.patch(f"{API}/auth/me", json={"locale": "ko"}, headers=headers).json()["locale"] == "ko"
    assert User.get(User.email == "en@example.com").locale == "ko"
    renamed = client.patch(f"{API}/auth/me", json={"full_name": "Emma Kim"}, headers=headers).json()
    assert (renamed["full_name"], renamed["locale"]) == ("Emma Kim", "ko")  # what was left out stays
    assert client.patch(f"{API}/auth/me", json={"locale": None}, headers=headers).json()["locale"] is None
    assert_error(client.patch(f"{API}/auth/me", json={"locale": "de"}, headers=headers), 422, "validation_error")
    assert_error(client.patch(f"{API}/auth/me", json={"full_name": None}, headers=headers), 422, "validation_error")
    assert_error(client.patch(f"{API}/auth/me", json={"is_admin": True}, headers=headers), 422, "validation_error")
    assert_error(client.patch(f"{API}/auth/me", json={"locale": "en"}), 401, "not_authenticated")
