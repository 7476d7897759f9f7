"""Stripe end to end: the shop over HTTP, the real worker, the production adapter (the stripe SDK)
against the fake Stripe over HTTP, and Stripe's signed webhooks posted to the running shop.
Charges, captures and refunds are counted at the fake."""

from __future__ import annotations

import json
from typing import Any

import pytest

from models.infra import failpoints
from models.tables import OrderEvent, WebhookEvent
from tests.fakes.stripe_server import FakeStripe
from tests.payment_flows import (
    API,
    confirmed_with_stripe,
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
    return f"{live_server.url}{API}/webhooks/stripe"


def test_payment_methods_and_the_happy_path(client: Any, worker: Any, fake_stripe: FakeStripe) -> None:
    methods = client.get(f"{API}/payment-methods").json()["items"]
    assert {"method": "stripe", "publishable_key": fake_stripe.publishable_key} in methods
    assert {"method": "toss", "client_key": "test_ck_fake_shop"} in methods and {"method": "dummy"} in methods

    headers, order, item = reserved(client, "stripe")
    action = order["payment"]["next_action"]
    intent = fake_stripe.intent(action["payment_intent_id"])
    assert action == {
        "type": "stripe_confirm",
        "client_secret": intent["client_secret"],
        "payment_intent_id": intent["id"],
        "publishable_key": fake_stripe.publishable_key,
    }
    assert (intent["amount"], intent["currency"], intent["capture_method"]) == (order["total"], "krw", "manual")
    assert intent["metadata"] == {"order_number": order["order_number"]}

    assert fake_stripe.confirm(intent["id"])["status"] == "requires_capture"  # Stripe.js in the browser
    paid = client.post(f"{API}/orders/{order['id']}/pay", json={"payment_intent_id": intent["id"]}, headers=headers)
    assert paid.status_code == 202, paid.text
    done = wait_order(client, headers, order["id"], "confirmed", "paid")
    assert done["payment"]["transaction_id"] == intent["id"] and done["payment"]["next_action"] is None
    assert fake_stripe.counts(intent["id"]) == {
        "create": 1,
        "confirm": 1,
        "capture": 1,
        "captured_amount": order["total"],
    }
    assert stock(item) == 3


def test_pay_with_another_orders_intent_is_refused(client: Any, worker: Any, fake_stripe: FakeStripe) -> None:
    headers, order, _ = reserved(client, "stripe")
    _, other, _ = reserved(client, "stripe", email="bo@example.com")
    wrong = client.post(
        f"{API}/orders/{order['id']}/pay",
        json={"payment_intent_id": other["payment"]["next_action"]["payment_intent_id"]},
        headers=headers,
    )
    assert_error(wrong, 422, "validation_error")
    assert "payment_intent_id" in wrong.json()["error"]["details"]["fields"]


def test_a_card_declined_in_the_browser_leaves_the_order_open_for_another_card(
    client: Any, worker: Any, fake_stripe: FakeStripe, live_server: Any
) -> None:
    headers, order, _ = reserved(client, "stripe")
    intent_id = order["payment"]["next_action"]["payment_intent_id"]
    fake_stripe.set_webhook(hook(live_server))
    assert fake_stripe.confirm(intent_id, "pm_card_chargeDeclined")["error"]["code"] == "card_declined"
    wait_for(lambda: "payment_webhook" in event_types(order["id"]), what="the payment_failed webhook")
    assert get(client, headers, order["id"])["status"] == "reserved"
    fake_stripe.confirm(intent_id, "pm_card_visa")  # the shopper tries another card
    client.post(f"{API}/orders/{order['id']}/pay", json={"payment_intent_id": intent_id}, headers=headers)
    wait_order(client, headers, order["id"], "confirmed", "paid")
    assert fake_stripe.counts(intent_id)["capture"] == 1


def test_a_decline_at_capture_fails_the_order_and_releases_stock(
    client: Any, worker: Any, fake_stripe: FakeStripe
) -> None:
    headers, order, item = reserved(client, "stripe")
    intent_id = order["payment"]["next_action"]["payment_intent_id"]
    fake_stripe.confirm(intent_id)
    fake_stripe.fail_next("capture", "decline")
    client.post(f"{API}/orders/{order['id']}/pay", json={"payment_intent_id": intent_id}, headers=headers)
    failed = wait_order(client, headers, order["id"], "failed", "failed")
    assert failed["failure_reason"] == "payment_declined" and stock(item) == 5
    assert fake_stripe.counts(intent_id).get("capture", 0) == 0


def test_a_capture_whose_responses_are_lost_ends_confirmed_and_charged_once(
    client: Any, worker: Any, fake_stripe: FakeStripe
) -> None:
    """Stripe captured; every answer to the SDK (and its own retries) is lost, so the task fails with
    GatewayUnavailable and Celery retries it: the same idempotency key replays the capture."""
    headers, order, _ = reserved(client, "stripe")
    intent_id = order["payment"]["next_action"]["payment_intent_id"]
    fake_stripe.confirm(intent_id)
    fake_stripe.fail_next("capture", "drop", times=3)  # the SDK tries three times (two retries)
    client.post(f"{API}/orders/{order['id']}/pay", json={"payment_intent_id": intent_id}, headers=headers)
    wait_order(client, headers, order["id"], "confirmed", "paid")
    assert fake_stripe.counts(intent_id)["capture"] == 1
    keys = [key for _, path, key in fake_stripe.requests if path.endswith(f"{intent_id}/capture")]
    assert keys == [f"capture:{order['order_number']}"] * 3  # the SDK's retries; the task's retry then
    # found the intent captured and did not ask again


def test_webhook_with_a_bad_signature_is_refused(client: Any, fake_stripe: FakeStripe, live_server: Any) -> None:
    headers, order, _ = reserved(client, "stripe")
    intent_id = order["payment"]["next_action"]["payment_intent_id"]
    fake_stripe.confirm(intent_id)
    event = fake_stripe.events_of("payment_intent.amount_capturable_updated", intent_id)[0]
    body = json.dumps(event)
    forged = fake_stripe.sign(body, secret="whsec_not_the_shops")
    for signature in (forged, "", "t=1,v1=00", fake_stripe.sign(body, timestamp=1)):  # wrong, none, junk, too old
        response = client.post(
            f"{API}/webhooks/stripe",
            content=body,
            headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
        )
        assert_error(response, 400, "invalid_signature")
    assert webhook_rows(order["id"]) == 0 and get(client, headers, order["id"])["status"] == "reserved"


def test_webhook_before_pay_confirms_the_order_once_and_a_replay_does_nothing(
    client: Any, worker: Any, fake_stripe: FakeStripe, live_server: Any
) -> None:
    headers, order, _ = reserved(client, "stripe")
    intent_id = order["payment"]["next_action"]["payment_intent_id"]
    fake_stripe.confirm(intent_id)  # the shopper paid; the storefront never calls /pay
    event = fake_stripe.events_of("payment_intent.amount_capturable_updated", intent_id)[0]
    assert fake_stripe.deliver(event, hook(live_server)) == 200
    wait_order(client, headers, order["id"], "confirmed", "paid")
    assert fake_stripe.counts(intent_id)["capture"] == 1

    before = (event_types(order["id"]), WebhookEvent.select().count())
    assert fake_stripe.deliver(event, hook(live_server)) == 200  # Stripe delivers again
    succeeded = fake_stripe.events_of("payment_intent.succeeded", intent_id)[0]
    assert fake_stripe.deliver(succeeded, hook(live_server)) == 200  # and the capture's own event
    late = client.post(f"{API}/orders/{order['id']}/pay", json={"payment_intent_id": intent_id}, headers=headers)
    assert_error(late, 409, "invalid_state")
    assert late.json()["error"]["details"]["payment_status"] == "paid"
    reconcile_all()
    wait_for(lambda: event_types(order["id"]).count("payment_webhook") == 2, what="the second event")
    assert WebhookEvent.select().count() == before[1] + 1
    assert event_types(order["id"]).count("payment_webhook") == before[0].count("payment_webhook") + 1
    assert fake_stripe.counts(intent_id)["capture"] == 1
    assert get(client, headers, order["id"])["status"] == "confirmed"


def test_cancel_after_capture_refunds_exactly_once_even_when_its_answer_is_lost(
    client: Any, worker: Any, fake_stripe: FakeStripe
) -> None:
    headers, order, item, intent_id = confirmed_with_stripe(client, fake_stripe)
    fake_stripe.fail_next("refund", "drop", times=3)  # the refund happens; no answer ever arrives
    assert client.delete(f"{API}/orders/{order['id']}", headers=headers).status_code == 200
    wait_order(client, headers, order["id"], "cancelled", "refunded")
    assert client.delete(f"{API}/orders/{order['id']}", headers=headers).status_code == 200
    reconcile_all()
    assert fake_stripe.counts(intent_id)["refund"] == 1
    assert fake_stripe.counts(intent_id)["refunded_amount"] == order["total"]
    assert stock(item) == 5


@pytest.mark.parametrize("refund_status", ["failed", "requires_action", "canceled"])
def test_a_refund_stripe_did_not_make_flags_the_order_instead_of_recording_it(
    client: Any, worker: Any, fake_stripe: FakeStripe, refund_status: str
) -> None:
    """Stripe answers a refund request with a refund object whose status may say nothing was given
    back (failed, canceled, or waiting for the customer's bank details). The order must stay paid and
    be flagged for a person, not recorded refunded with a "refunded" email to the shopper."""
    headers, order, item, intent_id = confirmed_with_stripe(client, fake_stripe)
    fake_stripe.refund_status_next = refund_status
    assert client.delete(f"{API}/orders/{order['id']}", headers=headers).status_code == 200
    flagged = wait_for(lambda: (o := order_row(order["id"])).payment_flag and o, what="the refund to be flagged")
    assert (flagged.status, flagged.payment_status) == ("cancelled", "paid")  # the money is still out
    assert flagged.payment_flag == f"refund not made by the gateway: it says captured ({refund_status})"
    assert "payment_refunded" not in event_types(order["id"])
    event = OrderEvent.get(OrderEvent.order == order["id"], OrderEvent.type == "payment_flagged")
    assert event.detail["refund_status"] == refund_status and event.detail["refund_id"].startswith("re_")
    assert fake_stripe.counts(intent_id)["refund"] == 1 and "refunded_amount" not in fake_stripe.counts(intent_id)
    assert stock(item) == 5


def test_a_pending_refund_is_on_its_way_and_recorded_refunded(
    client: Any, worker: Any, fake_stripe: FakeStripe
) -> None:
    headers, order, _, intent_id = confirmed_with_stripe(client, fake_stripe)
    fake_stripe.refund_status_next = "pending"
    assert client.delete(f"{API}/orders/{order['id']}", headers=headers).status_code == 200
    wait_order(client, headers, order["id"], "cancelled", "refunded")
    assert order_row(order["id"]).payment_flag is None


def test_expiry_before_capture_cancels_the_intent(client: Any, worker: Any, fake_stripe: FakeStripe) -> None:
    headers, order, item = reserved(client, "stripe")
    intent_id = order["payment"]["next_action"]["payment_intent_id"]
    fake_stripe.confirm(intent_id)  # authorised, but the shopper never came back
    expire_all()
    wait_order(client, headers, order["id"], "expired", "voided")
    assert fake_stripe.intent(intent_id)["status"] == "canceled" and fake_stripe.counts(intent_id)["cancel"] == 1
    assert stock(item) == 5


def test_a_killed_worker_after_the_capture_charges_once(client: Any, worker: Any, fake_stripe: FakeStripe) -> None:
    headers, order, _ = reserved(client, "stripe")
    intent_id = order["payment"]["next_action"]["payment_intent_id"]
    fake_stripe.confirm(intent_id)
    failpoints.arm("capture.after_gateway", "kill_worker")
    client.post(f"{API}/orders/{order['id']}/pay", json={"payment_intent_id": intent_id}, headers=headers)
    wait_for(lambda: not worker.running(), timeout=20, what="the worker to die")
    worker.start()  # the replacement takes the unacknowledged capture message
    wait_order(client, headers, order["id"], "confirmed", "paid", timeout=60)
    assert fake_stripe.counts(intent_id)["capture"] == 1
    assert event_types(order["id"]).count("payment_captured") == 1
