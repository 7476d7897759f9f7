"""The Stripe and Toss adapters, as production runs them (the stripe SDK, requests) against the fake
gateways over HTTP: each gateway answer becomes the right PaymentResult or error, a lost response
never charges twice, and an unknown outcome is looked up instead of being taken for a failure."""

from __future__ import annotations

import logging
import secrets
import threading
from typing import Any

import pytest

from models.payments import (
    GatewayRejected,
    GatewayUnavailable,
    ManualActionRequired,
    PaymentDeclined,
    PaymentOrder,
    get_gateway,
)
from tests.fakes.stripe_server import FakeStripe
from tests.fakes.toss_server import FakeToss
from tests.support import wait_for


def order(amount: int = 12000, transaction_id: str | None = None) -> PaymentOrder:
    return PaymentOrder(
        f"ORD-T-{secrets.token_hex(4).upper()}",
        amount,
        "KRW",
        "Tee and 1 more",
        "ana@example.com",
        "Ana",
        transaction_id,
    )


def stripe_authorized(fake: FakeStripe, amount: int = 12000) -> tuple[Any, PaymentOrder, str]:
    gateway = get_gateway("stripe")
    o = order(amount)
    auth = gateway.authorize(o, f"authorize:{o.order_number}")
    return gateway, PaymentOrder(**{**o.__dict__, "transaction_id": auth.transaction_id}), str(auth.transaction_id)


def test_stripe_authorize_creates_one_manual_capture_intent(fake_stripe: FakeStripe) -> None:
    gateway = get_gateway("stripe")
    o = order()
    first = gateway.authorize(o, f"authorize:{o.order_number}")
    again = gateway.authorize(o, f"authorize:{o.order_number}")  # a retried task
    assert first == again and first.next_action["type"] == "stripe_confirm"
    intent = fake_stripe.intent(str(first.transaction_id))
    assert intent["capture_method"] == "manual" and intent["amount"] == 12000 and intent["currency"] == "krw"
    assert intent["metadata"] == {"order_number": o.order_number} and intent["description"] == o.order_number
    assert first.next_action["client_secret"] == intent["client_secret"]
    assert fake_stripe.counts(intent["id"]) == {"create": 1}


def test_stripe_capture_takes_the_total_once(fake_stripe: FakeStripe) -> None:
    gateway, o, intent_id = stripe_authorized(fake_stripe)
    proof = gateway.validate_proof(o, {"payment_intent_id": intent_id})
    assert gateway.capture(o, proof, f"capture:{o.order_number}").status == "pending"  # not confirmed yet
    fake_stripe.confirm(intent_id)
    assert gateway.status(o, intent_id).status == "authorized"
    result = gateway.capture(o, proof, f"capture:{o.order_number}")
    assert (result.status, result.amount, result.transaction_id) == ("captured", 12000, intent_id)
    assert gateway.capture(o, proof, f"capture:{o.order_number}").status == "captured"
    assert fake_stripe.counts(intent_id)["capture"] == 1


def test_stripe_refuses_another_orders_intent(fake_stripe: FakeStripe) -> None:
    gateway, o, intent_id = stripe_authorized(fake_stripe)
    from models.errors import InvalidInput

    with pytest.raises(InvalidInput):
        gateway.validate_proof(o, {"payment_intent_id": "pi_someone_elses"})
    _, other, _ = stripe_authorized(fake_stripe)
    with pytest.raises(PaymentDeclined):  # the intent's metadata names another order
        gateway.capture(other, {"payment_intent_id": intent_id}, "capture:x")


def test_stripe_errors_are_mapped_once(fake_stripe: FakeStripe, caplog: pytest.LogCaptureFixture) -> None:
    gateway, o, intent_id = stripe_authorized(fake_stripe)
    fake_stripe.confirm(intent_id)
    proof = {"payment_intent_id": intent_id}
    fake_stripe.fail_next("capture", "decline")
    with pytest.raises(PaymentDeclined) as declined:
        gateway.capture(o, proof, f"capture:{o.order_number}")
    assert declined.value.details["decline_code"] == "generic_decline"
    # More than the SDK's own retries, under the key and then under the fresh key the adapter
    # tries after a 500 once it has read that the intent is still uncaptured.
    fake_stripe.fail_next("capture", "500", times=6)
    with pytest.raises(GatewayUnavailable):
        gateway.capture(o, proof, f"capture:{o.order_number}-2")
    fake_stripe.fail_next("retrieve", "rate_limit", times=3)
    with pytest.raises(GatewayUnavailable):
        gateway.status(o, intent_id)
    with caplog.at_level(logging.ERROR, logger="shop.payments.stripe"), pytest.raises(GatewayRejected) as reused:
        gateway.authorize(order(amount=999), f"authorize:{o.order_number}")  # the same key, other parameters
    assert reused.value.code == "idempotency_error"
    assert any("IDEMPOTENCY" in r.getMessage() for r in caplog.records)


def test_stripe_capture_racing_one_with_the_same_key_is_retried_not_flagged(fake_stripe: FakeStripe) -> None:
    """/pay's capture and the amount_capturable_updated webhook's both start one: while the first
    runs at Stripe, the second is answered 409 idempotency_key_in_use, and is to be asked again."""
    gateway, o, intent_id = stripe_authorized(fake_stripe)
    fake_stripe.confirm(intent_id)
    proof, key = {"payment_intent_id": intent_id}, f"capture:{o.order_number}"
    fake_stripe.fail_next("capture", "stall", hold=30)
    first = threading.Thread(target=gateway.capture, args=(o, proof, key))
    first.start()
    try:
        wait_for(lambda: fake_stripe.stalled() == 1, what="the first capture to reach Stripe")
        with pytest.raises(GatewayUnavailable):
            gateway.capture(o, proof, key)
    finally:
        fake_stripe.release()
        first.join(30)
    assert gateway.capture(o, proof, key).status == "captured"  # the retry: the first one's answer
    assert fake_stripe.counts(intent_id)["capture"] == 1


def test_stripe_capture_whose_response_is_lost_is_charged_once(fake_stripe: FakeStripe) -> None:
    gateway, o, intent_id = stripe_authorized(fake_stripe)
    fake_stripe.confirm(intent_id)
    fake_stripe.fail_next("capture", "timeout", hold=4)  # longer than PAYMENT_HTTP_TIMEOUT (3 s)
    result = gateway.capture(o, {"payment_intent_id": intent_id}, f"capture:{o.order_number}")
    assert result.status == "captured"
    assert fake_stripe.counts(intent_id)["capture"] == 1


def test_stripe_void_cancels_an_uncaptured_intent_and_reports_a_captured_one(fake_stripe: FakeStripe) -> None:
    gateway, o, intent_id = stripe_authorized(fake_stripe)
    fake_stripe.confirm(intent_id)
    assert gateway.void(o, intent_id, f"void:{o.order_number}").status == "voided"
    assert fake_stripe.intent(intent_id)["status"] == "canceled"
    with pytest.raises(PaymentDeclined):
        gateway.capture(o, {"payment_intent_id": intent_id}, f"capture:{o.order_number}")
    gateway, o, intent_id = stripe_authorized(fake_stripe)
    fake_stripe.confirm(intent_id)
    gateway.capture(o, {"payment_intent_id": intent_id}, f"capture:{o.order_number}")
    assert gateway.void(o, intent_id, f"void:{o.order_number}").status == "captured"


def test_stripe_refund_once_even_when_asked_again(fake_stripe: FakeStripe) -> None:
    gateway, o, intent_id = stripe_authorized(fake_stripe)
    fake_stripe.confirm(intent_id)
    gateway.capture(o, {"payment_intent_id": intent_id}, f"capture:{o.order_number}")
    fake_stripe.fail_next("refund", "drop")
    assert gateway.refund(o, intent_id, 12000, f"refund:{o.order_number}").status == "refunded"
    assert gateway.refund(o, intent_id, 12000, f"refund:{o.order_number}").status == "refunded"
    assert gateway.refund(o, intent_id, 12000, "refund:another-key").status == "refunded"  # already refunded
    assert fake_stripe.counts(intent_id)["refund"] == 1
    assert gateway.status(o, intent_id).status == "refunded"


def toss_paid(fake: FakeToss, method: str = "카드", outcome: str = "ok") -> tuple[Any, PaymentOrder, dict[str, Any]]:
    o = order(30000)
    key = fake.open_payment(o.order_number, o.amount, method=method, outcome=outcome)
    gateway = get_gateway("toss")
    return gateway, o, gateway.validate_proof(o, {"payment_key": key, "amount": 30000})


def test_toss_confirm_and_its_amount_check(fake_toss: FakeToss) -> None:
    gateway, o, proof = toss_paid(fake_toss)
    from models.errors import InvalidInput

    with pytest.raises(InvalidInput) as mismatch:
        gateway.validate_proof(o, {"payment_key": proof["payment_key"], "amount": 29999})
    assert mismatch.value.code == "amount_mismatch"
    result = gateway.capture(o, proof, f"capture:{o.order_number}")
    assert (result.status, result.amount, result.transaction_id) == ("captured", 30000, proof["payment_key"])
    assert gateway.capture(o, proof, f"capture:{o.order_number}").status == "captured"  # replayed
    assert fake_toss.counts(proof["payment_key"])["confirm"] == 1


def test_toss_card_rejection_is_a_decline(fake_toss: FakeToss) -> None:
    gateway, o, proof = toss_paid(fake_toss, outcome="reject")
    with pytest.raises(PaymentDeclined) as declined:
        gateway.capture(o, proof, f"capture:{o.order_number}")
    assert declined.value.details["decline_code"] == "REJECT_CARD_PAYMENT"


@pytest.mark.parametrize("mode", ["timeout", "drop"])
def test_toss_confirm_with_lost_response_is_looked_up_not_failed(fake_toss: FakeToss, mode: str) -> None:
    gateway, o, proof = toss_paid(fake_toss)
    fake_toss.fail_next("confirm", mode, hold=4)
    result = gateway.capture(o, proof, f"capture:{o.order_number}")
    assert result.status == "captured"
    assert fake_toss.counts(proof["payment_key"])["confirm"] == 1


def test_toss_already_processed_is_looked_up_not_failed(fake_toss: FakeToss) -> None:
    """A second confirm under another key (Toss forgets keys after 15 days) is ALREADY_PROCESSED_PAYMENT:
    the payment is looked up and found paid, never taken for a failure."""
    gateway, o, proof = toss_paid(fake_toss)
    gateway.capture(o, proof, f"capture:{o.order_number}")
    assert gateway.capture(o, proof, "capture:a-forgotten-key").status == "captured"
    assert fake_toss.counts(proof["payment_key"])["confirm"] == 1


def test_toss_unknown_outcome_with_nothing_done_is_retried(fake_toss: FakeToss) -> None:
    gateway, o, proof = toss_paid(fake_toss)
    fake_toss.fail_next("confirm", "provider_error")
    with pytest.raises(GatewayUnavailable):  # looked up: IN_PROGRESS, so not done: the task retries
        gateway.capture(o, proof, f"capture:{o.order_number}")
    assert gateway.capture(o, proof, f"capture:{o.order_number}").status == "captured"
    fake_toss.fail_next("retrieve", "500")
    with pytest.raises(GatewayUnavailable):
        gateway.status(o, proof["payment_key"])


def test_toss_payment_of_another_order_is_refused(fake_toss: FakeToss) -> None:
    gateway, o, proof = toss_paid(fake_toss)
    other = order(30000)
    with pytest.raises(PaymentDeclined):
        gateway.capture(other, proof, f"capture:{other.order_number}")
    assert fake_toss.counts(proof["payment_key"]).get("confirm", 0) == 0


def test_toss_refund_with_a_lost_response_cancels_once(fake_toss: FakeToss) -> None:
    gateway, o, proof = toss_paid(fake_toss)
    gateway.capture(o, proof, f"capture:{o.order_number}")
    fake_toss.fail_next("cancel", "drop")
    assert gateway.refund(o, proof["payment_key"], 30000, f"refund:{o.order_number}").status == "refunded"
    assert gateway.refund(o, proof["payment_key"], 30000, f"refund:{o.order_number}").status == "refunded"
    assert fake_toss.counts(proof["payment_key"])["cancel"] == 1


def test_toss_virtual_account(fake_toss: FakeToss) -> None:
    gateway, o, proof = toss_paid(fake_toss, method="가상계좌")
    waiting = gateway.capture(o, proof, f"capture:{o.order_number}")
    assert waiting.status == "awaiting_deposit"
    account = waiting.details["virtual_account"]
    assert account["bank"] == "우리은행" and account["account_number"] and account["due_date"]
    assert waiting.details["secret"] == fake_toss.payment(proof["payment_key"])["secret"]
    fake_toss.deposit(proof["payment_key"], "http://127.0.0.1:9/nobody-listens")
    assert gateway.status(o, proof["payment_key"]).status == "captured"
    with pytest.raises(ManualActionRequired):
        gateway.refund(o, proof["payment_key"], 30000, f"refund:{o.order_number}")

    gateway, o, proof = toss_paid(fake_toss, method="가상계좌")
    gateway.capture(o, proof, f"capture:{o.order_number}")
    assert gateway.void(o, proof["payment_key"], f"void:{o.order_number}").status == "voided"
    assert fake_toss.payment(proof["payment_key"])["status"] == "CANCELED"
    with pytest.raises(ValueError):
        fake_toss.deposit(proof["payment_key"], "http://127.0.0.1:9/nobody-listens")
