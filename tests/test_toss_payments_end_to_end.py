"""TossPayments end to end: the shop over HTTP, the real worker, the production adapter (requests)
against the fake Toss over HTTP, and deposit callbacks posted to the running shop. Approvals,
deposits and cancels are counted at the fake."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from models.infra import failpoints
from models.tables import WebhookEvent
from tests.fakes.toss_server import FakeToss
from tests.payment_flows import (
    API,
    event_types,
    expire_all,
    get,
    order_row,
    reconcile_all,
    reserved,
    stock,
    wait_order,
    webhook_rows,
)
from tests.support import assert_error, wait_for

pytestmark = pytest.mark.pipeline


def hook(live_server: Any) -> str:
    return f"{live_server.url}{API}/webhooks/toss"


def widget(fake: FakeToss, order: dict[str, Any], **kwargs: Any) -> str:
    """The shopper pays in the Toss widget with what next_action says; returns the paymentKey."""
    action = order["payment"]["next_action"]
    return fake.open_payment(action["order_id"], action["amount"], order_name=action["order_name"], **kwargs)


def pay(client: Any, headers: dict[str, str], order: dict[str, Any], key: str, amount: int | None = None) -> Any:
    return client.post(
        f"{API}/orders/{order['id']}/pay",
        headers=headers,
        json={"payment_key": key, "amount": order["total"] if amount is None else amount},
    )


def test_card_happy_path(client: Any, worker: Any, fake_toss: FakeToss) -> None:
    headers, order, item = reserved(client, "toss")
    action = order["payment"]["next_action"]
    assert (
        action
        | {
            "type": "toss_widget",
            "client_key": fake_toss.client_key,
            "order_id": order["order_number"],
            "amount": order["total"],
        }
        == action
    )
    assert action["order_name"] and action["customer_email"] == "ana@example.com"
    key = widget(fake_toss, order)
    assert pay(client, headers, order, key).status_code == 202
    done = wait_order(client, headers, order["id"], "confirmed", "paid")
    assert done["payment"]["transaction_id"] == key
    assert fake_toss.counts(key) == {"confirm": 1}
    assert fake_toss.payment(key)["status"] == "DONE" and stock(item) == 3


def test_payment_status_changed_is_a_hint_stored_once(
    client: Any, worker: Any, fake_toss: FakeToss, live_server: Any
) -> None:
    headers, order, _ = reserved(client, "toss")
    key = widget(fake_toss, order)
    pay(client, headers, order, key)
    wait_order(client, headers, order["id"], "confirmed", "paid")
    assert fake_toss.status_changed(key, hook(live_server)) == 200
    assert fake_toss.status_changed(key, hook(live_server)) == 200  # delivered twice
    wait_for(lambda: "payment_webhook" in event_types(order["id"]), what="the webhook's event")
    assert webhook_rows(order["id"]) == 1 and event_types(order["id"]).count("payment_webhook") == 1
    reconcile_all()
    assert get(client, headers, order["id"])["status"] == "confirmed" and order_row(order["id"]).payment_flag is None
    assert fake_toss.counts(key) == {"confirm": 1}


def test_a_stated_amount_must_be_the_total(client: Any, worker: Any, fake_toss: FakeToss) -> None:
    headers, order, _ = reserved(client, "toss")
    key = widget(fake_toss, order)
    assert_error(pay(client, headers, order, key, amount=order["total"] - 1), 422, "amount_mismatch")
    assert_error(
        client.post(f"{API}/orders/{order['id']}/pay", json={"payment_key": key}, headers=headers),
        422,
        "validation_error",
    )
    assert fake_toss.counts(key) == {}


def test_a_rejected_card_fails_the_order_and_releases_stock(client: Any, worker: Any, fake_toss: FakeToss) -> None:
    headers, order, item = reserved(client, "toss")
    key = widget(fake_toss, order, outcome="reject")
    pay(client, headers, order, key)
    failed = wait_order(client, headers, order["id"], "failed", "failed")
    assert failed["failure_detail"]["decline_code"] == "REJECT_CARD_PAYMENT" and stock(item) == 5


def test_a_confirm_that_times_out_after_the_charge_ends_confirmed_and_charged_once(
    client: Any, worker: Any, fake_toss: FakeToss
) -> None:
    headers, order, _ = reserved(client, "toss")
    key = widget(fake_toss, order)
    fake_toss.fail_next("confirm", "timeout", hold=5)  # Toss approves; the shop hears nothing for 3 s
    pay(client, headers, order, key)
    wait_order(client, headers, order["id"], "confirmed", "paid")
    assert fake_toss.counts(key)["confirm"] == 1
    assert [p for m, p, k in fake_toss.requests if p == f"/v1/payments/{key}"], "looked up, not taken for failed"


def test_cancel_after_capture_refunds_once_when_the_answer_is_lost(
    client: Any, worker: Any, fake_toss: FakeToss
) -> None:
    headers, order, item = reserved(client, "toss")
    key = widget(fake_toss, order)
    pay(client, headers, order, key)
    wait_order(client, headers, order["id"], "confirmed", "paid")
    fake_toss.fail_next("cancel", "drop")
    client.delete(f"{API}/orders/{order['id']}", headers=headers)
    wait_order(client, headers, order["id"], "cancelled", "refunded")
    reconcile_all()
    assert fake_toss.counts(key)["cancel"] == 1 and fake_toss.payment(key)["status"] == "CANCELED"
    assert stock(item) == 5


def test_a_killed_worker_after_the_approval_charges_once(client: Any, worker: Any, fake_toss: FakeToss) -> None:
    headers, order, _ = reserved(client, "toss")
    key = widget(fake_toss, order)
    failpoints.arm("capture.after_gateway", "kill_worker")
    pay(client, headers, order, key)
    wait_for(lambda: not worker.running(), timeout=20, what="the worker to die")
    worker.start()
    wait_order(client, headers, order["id"], "confirmed", "paid", timeout=60)
    assert fake_toss.counts(key)["confirm"] == 1
    confirms = [
        k for m, p, k in fake_toss.requests if p == "/v1/payments/confirm" and k == f"capture:{order['order_number']}"
    ]
    assert len(confirms) == 2  # the redelivered task asked again, with the same key: replayed, not re-approved


def virtual_account_order(client: Any, fake: FakeToss, due_in: float = 3 * 86400) -> tuple[Any, ...]:
    headers, order, item = reserved(client, "toss")
    key = widget(fake, order, method="가상계좌", due_in=due_in)
    assert pay(client, headers, order, key).status_code == 202
    waiting = wait_order(client, headers, order["id"], "reserved", "awaiting_deposit")
    return headers, waiting, item, key


def test_virtual_account_deposit_before_its_due_date_confirms(
    client: Any, worker: Any, fake_toss: FakeToss, live_server: Any
) -> None:
    headers, order, item, key = virtual_account_order(client, fake_toss)
    account = order["payment"]["virtual_account"]
    issued = fake_toss.payment(key)["virtualAccount"]
    assert account["account_number"] == issued["accountNumber"] and account["holder"] == issued["customerName"]
    assert account["bank"] == "우리은행" and order["payment"]["next_action"] is None
    due = datetime.fromisoformat(issued["dueDate"])
    assert datetime.fromisoformat(order["reserved_until"]) == due  # the stock is held until the due date
    assert expire_all(now=due.replace(microsecond=0)) == 0  # the 15-minute reservation does not apply
    assert stock(item) == 3

    forged = {
        "createdAt": "2026-11-30T00:00:00.000000",
        "secret": "not-the-secret",
        "status": "DONE",
        "transactionKey": "forged",
        "orderId": order["order_number"],
    }
    assert_error(client.post(f"{API}/webhooks/toss", content=json.dumps(forged)), 400, "invalid_signature")
    assert get(client, headers, order["id"])["payment_status"] == "awaiting_deposit"

    assert fake_toss.deposit(key, hook(live_server)) == 200
    wait_order(client, headers, order["id"], "confirmed", "paid")
    event, body, _ = fake_toss.callbacks[-1]
    assert event == "DEPOSIT_CALLBACK"
    replay = client.post(f"{API}/webhooks/toss", content=json.dumps(body))  # Toss delivers it again
    assert replay.status_code == 200 and replay.json() == {"received": True, "duplicate": True}
    assert webhook_rows(order["id"]) == 1 and event_types(order["id"]).count("payment_captured") == 1
    assert fake_toss.counts(key) == {"confirm": 1, "deposit": 1} and stock(item) == 3


def test_a_deposit_whose_callback_is_lost_is_found_by_reconciliation(
    client: Any, worker: Any, fake_toss: FakeToss
) -> None:
    headers, order, item, key = virtual_account_order(client, fake_toss)
    assert fake_toss.deposit(key, "http://127.0.0.1:9/nobody-listens") == 0  # the callback never arrives
    reconcile_all()
    wait_order(client, headers, order["id"], "confirmed", "paid")
    assert fake_toss.counts(key) == {"confirm": 1, "deposit": 1} and stock(item) == 3


def test_virtual_account_past_its_due_date_expires_and_releases_stock(
    client: Any, worker: Any, fake_toss: FakeToss
) -> None:
    headers, order, item, key = virtual_account_order(client, fake_toss, due_in=600)
    fake_toss.advance(601)  # the due date passes at Toss without a deposit
    reconcile_all()
    expired = wait_order(client, headers, order["id"], "expired", "voided")
    assert stock(item) == 5 and "deposit_overdue" in event_types(order["id"])
    assert expired["payment"]["virtual_account"]["account_number"]
    assert fake_toss.payment(key)["status"] == "CANCELED"  # the account is closed at Toss
    with pytest.raises(ValueError):
        fake_toss.deposit(key, "http://127.0.0.1:9/unused")  # a late transfer is refused by the bank


def test_a_deposit_that_lands_after_the_order_closed_is_flagged_for_a_manual_refund(
    client: Any, worker: Any, fake_toss: FakeToss, live_server: Any, admin_headers: dict[str, str]
) -> None:
    """The account could not be closed (Toss unreachable) and the shopper transferred anyway: the
    order stays closed, its payment is recorded as paid, and since Toss needs the shopper's bank
    account to refund a deposit, a person is asked to do it."""
    headers, order, item, key = virtual_account_order(client, fake_toss)
    fake_toss.fail_next("cancel", "500", times=50)
    client.delete(f"{API}/orders/{order['id']}", headers=headers)
    wait_order(client, headers, order["id"], "cancelled")
    assert fake_toss.deposit(key, hook(live_server), force=True) == 200
    wait_for(lambda: order_row(order["id"]).payment_flag, timeout=30, what="the flag")
    row = order_row(order["id"])
    assert (row.status, row.payment_status) == ("cancelled", "paid") and "refund needs a person" in row.payment_flag
    flagged = client.get(f"{API}/admin/payments/flagged", headers=admin_headers).json()
    assert [f["order_number"] for f in flagged["items"]] == [order["order_number"]]
    assert client.get(f"{API}/admin/payments/flagged", headers=headers).status_code == 403
    assert fake_toss.counts(key).get("cancel", 0) == 0 and stock(item) == 5
    assert WebhookEvent.select().where(WebhookEvent.order == order["id"]).count() == 1


def test_unsigned_events_about_no_payment_of_ours_leave_nothing_behind(
    client: Any, worker: Any, fake_toss: FakeToss, live_server: Any
) -> None:
    """PAYMENT_STATUS_CHANGED is not signed: anyone who knows an order number can post one, with a new
    event id each time. One that names a payment key the order does not have, or no order of ours,
    is answered 200 and kept nowhere: not in webhook_events, not in the order's timeline."""
    import requests

    headers, order, _ = reserved(client, "toss")
    key = widget(fake_toss, order)
    pay(client, headers, order, key)
    wait_order(client, headers, order["id"], "confirmed", "paid")
    before = event_types(order["id"])
    for n in range(20):
        for order_id in (order["order_number"], "ORD-20261201-NOTOURS1"):
            forged = {
                "eventType": "PAYMENT_STATUS_CHANGED",
                "createdAt": "2026-12-01T10:00:00.000000",
                "data": {
                    "paymentKey": f"forged-{n}",
                    "orderId": order_id,
                    "status": "CANCELED",
                    "lastTransactionKey": f"t{n}",
                },
            }
            assert requests.post(hook(live_server), json=forged, timeout=10).status_code == 200
    assert WebhookEvent.select().where(WebhookEvent.gateway == "toss").count() == 0
    assert event_types(order["id"]) == before
    # The order's own payment still gets through, once.
    assert fake_toss.status_changed(key, hook(live_server)) == 200
    wait_for(lambda: "payment_webhook" in event_types(order["id"]), what="the real event")
    assert webhook_rows(order["id"]) == 1
