"""The fake gateways (each test here starts its own) answer the real clients as the real services
do: the official `stripe` SDK (errors mapped to its exception classes, idempotent replays, signed
events its own verifier accepts) and plain `requests` for TossPayments (Basic auth, {code,
message}, replays, deposits)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
import stripe

from tests.fakes.stripe_server import FakeStripe, decode_form
from tests.fakes.toss_server import FakeToss


@pytest.fixture
def own_stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe().start()
    yield fake
    fake.stop()


@pytest.fixture
def own_toss() -> Iterator[FakeToss]:
    fake = FakeToss().start()
    yield fake
    fake.stop()


def sdk(fake: FakeStripe, retries: int = 0, timeout: float = 5.0, key: str | None = None) -> stripe.StripeClient:
    return stripe.StripeClient(
        key or fake.api_key,
        base_addresses={"api": fake.url},
        max_network_retries=retries,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


class Catcher:
    """A tiny webhook receiver: keeps (headers, raw body) of every POST."""

    def __init__(self) -> None:
        received = self.received = []  # type: list[tuple[dict[str, str], bytes]]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def catcher() -> Iterator[Catcher]:
    c = Catcher()
    yield c
    c.close()


def test_form_decoding_follows_stripes_nested_keys() -> None:
    body = "amount=12000&metadata[order_number]=ORD-1&expand[0]=latest_charge&expand[1]=x&a[b][c]=d"
    assert decode_form(body) == {
        "amount": "12000",
        "metadata": {"order_number": "ORD-1"},
        "expand": ["latest_charge", "x"],
        "a": {"b": {"c": "d"}},
    }


def test_stripe_manual_capture_through_the_sdk(own_stripe: FakeStripe) -> None:
    client = sdk(own_stripe)
    intent = client.v1.payment_intents.create(
        params={
            "amount": 12000,
            "currency": "krw",
            "capture_method": "manual",
            "metadata": {"order_number": "ORD-1"},
            "description": "ORD-1",
        },
        options={"idempotency_key": "authorize:ORD-1"},
    )
    assert intent.status == "requires_payment_method" and intent.metadata["order_number"] == "ORD-1"
    assert own_stripe.confirm(intent.id)["status"] == "requires_capture"
    captured = client.v1.payment_intents.capture(
        intent.id, params={"amount_to_capture": 12000}, options={"idempotency_key": "capture:ORD-1"}
    )
    assert captured.status == "succeeded" and captured.amount_received == 12000
    refund = client.v1.refunds.create(
        params={"payment_intent": intent.id, "amount": 12000}, options={"idempotency_key": "refund:ORD-1"}
    )
    assert refund.status == "succeeded" and refund.amount == 12000
    assert own_stripe.counts(intent.id) == {
        "create": 1,
        "confirm": 1,
        "capture": 1,
        "captured_amount": 12000,
        "refund": 1,
        "refunded_amount": 12000,
    }
    listed = client.v1.refunds.list(params={"payment_intent": intent.id})
    assert [r.id for r in listed.data] == [refund.id]


def test_stripe_idempotency_replays_and_refuses_other_parameters(own_stripe: FakeStripe) -> None:
    client = sdk(own_stripe)
    params = {"amount": 5000, "currency": "krw", "capture_method": "manual"}
    first = client.v1.payment_intents.create(params=params, options={"idempotency_key": "k1"})
    again = client.v1.payment_intents.create(params=params, options={"idempotency_key": "k1"})
    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert own_stripe.total("create") == 1
    with pytest.raises(stripe.IdempotencyError) as error:
        client.v1.payment_intents.create(params={**params, "amount": 5001}, options={"idempotency_key": "k1"})
    assert error.value.http_status == 400


def test_stripe_errors_map_to_the_sdk_exceptions(own_stripe: FakeStripe) -> None:
    client = sdk(own_stripe)
    intent = client.v1.payment_intents.create(params={"amount": 100, "currency": "krw", "capture_method": "manual"})
    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_intents.confirm(intent.id, params={"payment_method": "pm_card_chargeDeclined"})
    assert declined.value.http_status == 402 and declined.value.code == "card_declined"
    assert own_stripe.events_of("payment_intent.payment_failed", intent.id)
    with pytest.raises(stripe.InvalidRequestError) as unexpected:
        client.v1.payment_intents.capture(intent.id)
    assert unexpected.value.code == "payment_intent_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.payment_intents.retrieve("pi_nope")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    with pytest.raises(stripe.AuthenticationError):
        sdk(own_stripe, key="sk_test_wrong").v1.payment_intents.retrieve(intent.id)
    own_stripe.fail_next("retrieve", "500")
    with pytest.raises(stripe.APIError):
        client.v1.payment_intents.retrieve(intent.id)
    own_stripe.fail_next("retrieve", "rate_limit")
    with pytest.raises(stripe.RateLimitError):
        client.v1.payment_intents.retrieve(intent.id)


def test_stripe_lost_response_is_healed_by_the_sdks_retry_with_the_same_key(own_stripe: FakeStripe) -> None:
    client = sdk(own_stripe, retries=2, timeout=1.0)
    intent = client.v1.payment_intents.create(params={"amount": 7000, "currency": "krw", "capture_method": "manual"})
    own_stripe.confirm(intent.id)
    own_stripe.fail_next("capture", "timeout", hold=3)
    captured = client.v1.payment_intents.capture(intent.id, options={"idempotency_key": "capture:X"})
    assert captured.status == "succeeded"
    assert own_stripe.counts(intent.id)["capture"] == 1
    keys = [key for method, path, key in own_stripe.requests if path.endswith("/capture")]
    assert keys == ["capture:X", "capture:X"]


def test_stripe_keeps_a_500_under_its_key_once_the_endpoint_began(own_stripe: FakeStripe) -> None:
    client = sdk(own_stripe)
    intent = client.v1.payment_intents.create(params={"amount": 7000, "currency": "krw", "capture_method": "manual"})
    own_stripe.confirm(intent.id)
    own_stripe.fail_next("capture", "stored_500")
    for _ in range(2):  # the retry with the same key gets the same 500: nothing was captured
        with pytest.raises(stripe.APIError) as error:
            client.v1.payment_intents.capture(intent.id, options={"idempotency_key": "capture:Z"})
        assert error.value.http_status == 500
    assert own_stripe.intent(intent.id)["status"] == "requires_capture"
    captured = client.v1.payment_intents.capture(intent.id, options={"idempotency_key": "capture:Z:2"})
    assert captured.status == "succeeded" and own_stripe.counts(intent.id)["capture"] == 1
    own_stripe.fail_next("refund", "done_500")  # refunded, and the answer kept is a 500
    with pytest.raises(stripe.APIError):
        client.v1.refunds.create(params={"payment_intent": intent.id}, options={"idempotency_key": "refund:Z"})
    assert own_stripe.counts(intent.id)["refund"] == 1
    found = client.v1.payment_intents.search(params={"query": "metadata['order_number']:'nobody'"})
    assert found.data == []


def test_stripe_without_retries_a_dropped_response_is_a_connection_error(own_stripe: FakeStripe) -> None:
    client = sdk(own_stripe)
    intent = client.v1.payment_intents.create(params={"amount": 7000, "currency": "krw", "capture_method": "manual"})
    own_stripe.confirm(intent.id)
    own_stripe.fail_next("capture", "drop")
    with pytest.raises(stripe.APIConnectionError):
        client.v1.payment_intents.capture(intent.id, options={"idempotency_key": "capture:Y"})
    assert own_stripe.intent(intent.id)["status"] == "succeeded"  # the work was done


def test_stripe_events_are_signed_as_the_sdk_verifies(own_stripe: FakeStripe, catcher: Catcher) -> None:
    client = sdk(own_stripe)
    intent = client.v1.payment_intents.create(params={"amount": 100, "currency": "krw", "capture_method": "manual"})
    own_stripe.confirm(intent.id)
    event = own_stripe.events_of("payment_intent.amount_capturable_updated", intent.id)[0]
    assert own_stripe.deliver(event, catcher.url) == 200
    headers, body = catcher.received[-1]
    verified = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], own_stripe.webhook_secret)
    assert verified.id == event["id"] and verified.data.object.id == intent.id
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, headers["Stripe-Signature"], "whsec_other")


def test_stripe_publishable_key_confirms_with_the_client_secret(own_stripe: FakeStripe) -> None:
    intent = sdk(own_stripe).v1.payment_intents.create(
        params={"amount": 100, "currency": "krw", "capture_method": "manual"}
    )
    url = f"{own_stripe.url}/v1/payment_intents/{intent.id}/confirm"
    headers = {"Authorization": f"Bearer {own_stripe.publishable_key}"}
    wrong = requests.post(url, data={"payment_method": "pm_card_visa", "client_secret": "nope"}, headers=headers)
    assert wrong.status_code == 404
    ok = requests.post(
        url, data={"payment_method": "pm_card_visa", "client_secret": intent.client_secret}, headers=headers
    )
    assert ok.status_code == 200 and ok.json()["status"] == "requires_capture"


def toss_headers(fake: FakeToss, key: str | None = None) -> dict[str, str]:
    token = base64.b64encode(f"{fake.secret_key}:".encode()).decode()
    return {"Authorization": f"Basic {token}", **({"Idempotency-Key": key} if key else {})}


def test_toss_card_confirm_lookup_and_cancel(own_toss: FakeToss) -> None:
    key = own_toss.open_payment("ORD-1", 15000)
    body = {"paymentKey": key, "orderId": "ORD-1", "amount": 15000}
    done = requests.post(f"{own_toss.url}/v1/payments/confirm", json=body, headers=toss_headers(own_toss, "c1"))
    assert done.status_code == 200 and done.json()["status"] == "DONE"
    replay = requests.post(f"{own_toss.url}/v1/payments/confirm", json=body, headers=toss_headers(own_toss, "c1"))
    assert replay.json() == done.json()
    again = requests.post(f"{own_toss.url}/v1/payments/confirm", json=body, headers=toss_headers(own_toss))
    assert again.status_code == 400 and again.json()["code"] == "ALREADY_PROCESSED_PAYMENT"
    assert own_toss.counts(key)["confirm"] == 1
    by_order = requests.get(f"{own_toss.url}/v1/payments/orders/ORD-1", headers=toss_headers(own_toss))
    assert by_order.json()["paymentKey"] == key
    cancel = requests.post(
        f"{own_toss.url}/v1/payments/{key}/cancel",
        json={"cancelReason": "고객 취소"},
        headers=toss_headers(own_toss, "r1"),
    )
    assert cancel.json()["status"] == "CANCELED" and cancel.json()["balanceAmount"] == 0
    twice = requests.post(
        f"{own_toss.url}/v1/payments/{key}/cancel", json={"cancelReason": "고객 취소"}, headers=toss_headers(own_toss)
    )
    assert twice.status_code == 400 and twice.json()["code"] == "ALREADY_CANCELED_PAYMENT"


def test_toss_errors(own_toss: FakeToss) -> None:
    wrong = requests.get(f"{own_toss.url}/v1/payments/x", auth=("test_sk_wrong", ""))
    assert wrong.status_code == 401 and wrong.json()["code"] == "UNAUTHORIZED_KEY"
    missing = requests.get(f"{own_toss.url}/v1/payments/x", headers=toss_headers(own_toss))
    assert missing.status_code == 404 and missing.json() == {
        "code": "NOT_FOUND_PAYMENT",
        "message": missing.json()["message"],
    }
    key = own_toss.open_payment("ORD-2", 1000, outcome="reject")
    rejected = requests.post(
        f"{own_toss.url}/v1/payments/confirm",
        headers=toss_headers(own_toss),
        json={"paymentKey": key, "orderId": "ORD-2", "amount": 1000},
    )
    assert rejected.status_code == 403 and rejected.json()["code"] == "REJECT_CARD_PAYMENT"
    assert own_toss.payment(key)["status"] == "ABORTED"
    key = own_toss.open_payment("ORD-3", 1000)
    own_toss.fail_next("confirm", "500")
    failed = requests.post(
        f"{own_toss.url}/v1/payments/confirm",
        headers=toss_headers(own_toss, "k3"),
        json={"paymentKey": key, "orderId": "ORD-3", "amount": 1000},
    )
    assert failed.status_code == 500 and failed.json()["code"] == "FAILED_INTERNAL_SYSTEM_PROCESSING"
    retried = requests.post(
        f"{own_toss.url}/v1/payments/confirm",
        headers=toss_headers(own_toss, "k3"),
        json={"paymentKey": key, "orderId": "ORD-3", "amount": 1000},
    )
    assert retried.json()["status"] == "DONE"  # the 500 came before the work and was not kept


def test_toss_lost_confirm_response_did_the_work(own_toss: FakeToss) -> None:
    key = own_toss.open_payment("ORD-4", 2000)
    own_toss.fail_next("confirm", "timeout", hold=2)
    with pytest.raises(requests.Timeout):
        requests.post(
            f"{own_toss.url}/v1/payments/confirm",
            headers=toss_headers(own_toss, "k4"),
            timeout=0.5,
            json={"paymentKey": key, "orderId": "ORD-4", "amount": 2000},
        )
    assert own_toss.payment(key)["status"] == "DONE" and own_toss.counts(key)["confirm"] == 1


def test_toss_virtual_account_deposit_posts_the_callback(own_toss: FakeToss, catcher: Catcher) -> None:
    key = own_toss.open_payment("ORD-5", 30000, method="가상계좌", due_in=3600)
    waiting = requests.post(
        f"{own_toss.url}/v1/payments/confirm",
        headers=toss_headers(own_toss),
        json={"paymentKey": key, "orderId": "ORD-5", "amount": 30000},
    ).json()
    assert waiting["status"] == "WAITING_FOR_DEPOSIT" and waiting["secret"]
    assert {"accountNumber", "bankCode", "customerName", "dueDate"} <= set(waiting["virtualAccount"])
    assert own_toss.deposit(key, catcher.url) == 200
    callback = json.loads(catcher.received[-1][1])
    assert callback["secret"] == waiting["secret"] and callback["status"] == "DONE"
    assert callback["orderId"] == "ORD-5" and callback["transactionKey"]
    assert own_toss.payment(key)["status"] == "DONE"


def test_toss_virtual_account_refuses_a_deposit_after_its_due_date(own_toss: FakeToss) -> None:
    key = own_toss.open_payment("ORD-6", 30000, method="가상계좌", due_in=60)
    requests.post(
        f"{own_toss.url}/v1/payments/confirm",
        headers=toss_headers(own_toss),
        json={"paymentKey": key, "orderId": "ORD-6", "amount": 30000},
    )
    own_toss.advance(120)
    with pytest.raises(ValueError, match="expired"):
        own_toss.deposit(key, "http://127.0.0.1:9/unused")
    looked_up = requests.get(f"{own_toss.url}/v1/payments/{key}", headers=toss_headers(own_toss)).json()
    assert looked_up["status"] == "WAITING_FOR_DEPOSIT" and looked_up["virtualAccount"]["expired"] is True


def test_control_over_http(own_toss: FakeToss) -> None:
    made = requests.post(f"{own_toss.url}/_fake/open_payment", json={"order_id": "ORD-7", "amount": 10}).json()
    assert own_toss.payment(made["result"])["orderId"] == "ORD-7"
    assert requests.post(f"{own_toss.url}/_fake/nope", json={}).status_code == 404
