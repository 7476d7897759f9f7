"""Reconciliation and the enabled gateways: orders whose payment outcome was lost are brought in
line with the gateway's own view (forward only), what cannot be settled is flagged for operators,
and only gateways with keys (and the dummy one outside production) can be chosen."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from models import events
from models.infra import failpoints
from models.infra.settings import get_settings
from models.orders import payment_sync, pipeline
from models.payments import enabled_gateways, payment_methods
from tests.fakes.stripe_server import FakeStripe
from tests.payment_flows import API, event_types, get, order_row, reconcile_all, reserved, run_beat, wait_order
from tests.support import assert_error, checkout_body, wait_for


@pytest.mark.pipeline
def test_an_authorisation_whose_webhook_was_lost_is_captured(client: Any, worker: Any, fake_stripe: FakeStripe) -> None:
    headers, order, _ = reserved(client, "stripe")
    intent_id = order["payment"]["next_action"]["payment_intent_id"]
    fake_stripe.confirm(intent_id)  # no webhook arrives, and the storefront never calls /pay
    assert reconcile_all() >= 1
    wait_order(client, headers, order["id"], "confirmed", "paid")
    assert "payment_authorized" in event_types(order["id"]) and fake_stripe.counts(intent_id)["capture"] == 1


@pytest.mark.pipeline
def test_a_capture_made_at_the_gateway_but_never_recorded_confirms_the_order(
    client: Any, worker: Any, fake_stripe: FakeStripe
) -> None:
    headers, order, _ = reserved(client, "stripe")
    intent_id = order["payment"]["next_action"]["payment_intent_id"]
    fake_stripe.confirm(intent_id)
    failpoints.arm("capture.after_gateway", "raise")  # captured at Stripe; the task dies before recording it
    client.post(f"{API}/orders/{order['id']}/pay", json={"payment_intent_id": intent_id}, headers=headers)
    wait_for(lambda: fake_stripe.counts(intent_id).get("capture"), what="the capture at Stripe")
    reconcile_all()
    wait_order(client, headers, order["id"], "confirmed", "paid")
    assert fake_stripe.counts(intent_id)["capture"] == 1


def test_a_refund_made_but_never_recorded_is_seen_not_repeated(client: Any, fake_stripe: FakeStripe) -> None:
    """Runs the steps in this process (no worker): the refund task is lost after Stripe refunded."""
    import stripe

    from models.orders import payment_steps

    headers, order, _ = _captured_here(client, fake_stripe)
    with events.collecting():  # cancelled; its refund follow-up is lost with the broker
        pipeline.cancel(order["id"], None, "admin")
    sdk = stripe.StripeClient(fake_stripe.api_key, base_addresses={"api": fake_stripe.url})
    intent_id = order_row(order["id"]).payment_transaction_id
    sdk.v1.refunds.create(
        params={"payment_intent": intent_id, "amount": order["total"]},
        options={"idempotency_key": f"refund:{order['order_number']}"},
    )  # as the lost task did
    with events.collecting() as emitted:
        payment_sync.reconcile(order["id"])
    assert order_row(order["id"]).payment_status == "refunded"
    assert [m for m in emitted if isinstance(m, events.Command)] == [events.SendOrderEmail(order["id"], "refunded")]
    with events.collecting():
        payment_steps.refund(order["id"])  # a late copy of the refund task does nothing
    assert fake_stripe.counts(intent_id)["refund"] == 1
    assert "payment_refunded" in event_types(order["id"])


def _captured_here(client: Any, fake: FakeStripe) -> tuple[dict[str, str], dict[str, Any], Any]:
    from models.orders import payment_steps

    headers, order, item = _prepared_here(client)
    intent_id = order_row(order["id"]).payment_transaction_id
    fake.confirm(intent_id)
    with events.collecting():
        payment_steps.submit(order["id"], order_row(order["id"]).user, {"payment_intent_id": intent_id})
        payment_steps.capture(order["id"])
    assert order_row(order["id"]).status == "confirmed"
    return headers, get(client, headers, order["id"]), item


def _prepared_here(client: Any) -> tuple[dict[str, str], dict[str, Any], Any]:
    from models.orders import payment_steps
    from models.tables import Product
    from tests.support import register_shopper

    headers = register_shopper(client, "cy@example.com")
    item = Product.create(sku="SKU-R", name="Tee", slug="tee-r", price=9000, stock_quantity=3, tags=[], images=[])
    client.post(
        f"{API}/cart/items", json={"product_id": item.id, "quantity": 1}, headers={"X-Session-ID": "session-r1"}
    )
    with events.collecting():  # the same steps the worker would run, here
        from models.orders.checkout import place_order

        placed = place_order(order_user(headers, client), "session-r1", checkout_body(payment_method="stripe"), None)
        pipeline.reserve_stock(placed.order.id)
        payment_steps.authorize(placed.order.id)
    return headers, get(client, headers, placed.order.id), item


def order_user(headers: dict[str, str], client: Any) -> Any:
    from models.tables import User

    return User.get_by_id(client.get(f"{API}/auth/me", headers=headers).json()["id"])


def test_a_payment_stuck_for_four_periods_is_flagged_for_operators(
    client: Any, fake_stripe: FakeStripe, admin_headers: dict[str, str]
) -> None:
    from models.orders import payment_steps

    headers, order, _ = _prepared_here(client)
    intent_id = order_row(order["id"]).payment_transaction_id
    with events.collecting():  # /pay, but the shopper's bank never finishes the authorisation
        payment_steps.submit(order["id"], order_user(headers, client), {"payment_intent_id": intent_id})
    later = get_settings().payment_reconcile_after * 4 + 60
    with events.collecting():
        payment_sync.due_for_reconciliation(now=order_row(order["id"]).updated_at + timedelta(seconds=later))
    assert order_row(order["id"]).payment_flag == "no payment outcome yet after 20 minutes"
    listed = client.get(f"{API}/admin/payments/flagged", headers=admin_headers).json()
    assert (
        listed["total"] == 1
        and listed["items"][0] | {"order_id": order["id"], "gateway": "stripe", "transaction_id": intent_id}
        == listed["items"][0]
    )
    fake_stripe.confirm(intent_id)
    with events.collecting():  # the outcome arrives after all: confirmed, and the flag is cleared
        payment_sync.reconcile(order["id"])
    assert (order_row(order["id"]).status, order_row(order["id"]).payment_flag) == ("confirmed", None)


@pytest.mark.pipeline
def test_a_refund_made_on_the_dashboard_of_a_confirmed_order_is_flagged(
    client: Any, worker: Any, fake_stripe: FakeStripe, live_server: Any
) -> None:
    import stripe

    headers, order, _ = reserved(client, "stripe")
    intent_id = order["payment"]["next_action"]["payment_intent_id"]
    fake_stripe.confirm(intent_id)
    client.post(f"{API}/orders/{order['id']}/pay", json={"payment_intent_id": intent_id}, headers=headers)
    wait_order(client, headers, order["id"], "confirmed", "paid")
    sdk = stripe.StripeClient(fake_stripe.api_key, base_addresses={"api": fake_stripe.url})
    sdk.v1.refunds.create(params={"payment_intent": intent_id})  # someone refunds on the dashboard
    refunded = fake_stripe.events_of("charge.refunded", intent_id)[0]
    assert fake_stripe.deliver(refunded, f"{live_server.url}{API}/webhooks/stripe") == 200
    wait_for(lambda: order_row(order["id"]).payment_flag, what="the flag")
    assert "refunded while the order is confirmed" in str(order_row(order["id"]).payment_flag)
    assert get(client, headers, order["id"])["status"] == "confirmed"  # never moved backwards by an event


def test_enabled_gateways_follow_the_keys() -> None:
    settings = get_settings()
    assert enabled_gateways(settings) == ["dummy", "stripe", "toss"]
    production = dataclasses.replace(settings, env="production", toss_client_key="")
    assert enabled_gateways(production) == ["stripe"]
    assert payment_methods(production) == [{"method": "stripe", "publishable_key": settings.stripe_publishable_key}]
    assert enabled_gateways(dataclasses.replace(settings, stripe_api_key="", toss_secret_key="")) == ["dummy"]


def test_toss_is_offered_only_in_a_shop_that_charges_won(client: Any) -> None:
    """Toss amounts are won: a shop in USD would ask it for 1,999 won where it means $19.99."""
    settings = get_settings()
    assert settings.currency == "KRW" and "toss" in enabled_gateways(settings)
    for currency in ("USD", "EUR", "JPY"):
        assert enabled_gateways(dataclasses.replace(settings, currency=currency)) == ["dummy", "stripe"]


def test_payment_methods_over_http_leave_toss_out_of_a_usd_shop(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CURRENCY", "USD")
    get_settings.cache_clear()
    try:
        methods = [m["method"] for m in client.get(f"{API}/payment-methods").json()["items"]]
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert methods == ["dummy", "stripe"]


@pytest.fixture
def without_stripe_keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("STRIPE_API_KEY", "")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_ordering_with_a_method_that_is_not_enabled_names_the_enabled_ones(
    client: Any, user_headers: dict[str, str], without_stripe_keys: None
) -> None:
    from models.tables import Product

    item = Product.create(sku="SKU-E", name="Tee", slug="tee-e", price=9000, stock_quantity=3, tags=[], images=[])
    client.post(
        f"{API}/cart/items", json={"product_id": item.id, "quantity": 1}, headers={"X-Session-ID": "session-e1"}
    )
    response = client.post(
        f"{API}/orders",
        json=checkout_body(payment_method="stripe"),
        headers={**user_headers, "X-Session-ID": "session-e1"},
    )
    error = assert_error(response, 422, "validation_error")
    assert "enabled: dummy, toss" in error["message"] and "payment_method" in error["details"]["fields"]
    assert [m["method"] for m in client.get(f"{API}/payment-methods").json()["items"]] == ["dummy", "toss"]


def test_the_beat_job_is_wired(client: Any) -> None:
    from celeryconfig import beat_schedule, task_routes

    assert beat_schedule["reconcile-payments"]["task"] == "beat.reconcile_payments"
    assert task_routes["pipeline.reconcile_payment"] == {"queue": "payments"}
    assert run_beat(payment_sync.due_for_reconciliation) == 0  # nothing to do on an empty shop
