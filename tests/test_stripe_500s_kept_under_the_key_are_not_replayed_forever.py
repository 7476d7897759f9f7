"""Stripe keeps a 500 under its idempotency key for 24 hours once the endpoint began, and replays
it to every retry with that key. A capture, a refund or an authorisation answered so still ends as
it should: the shop reads whether the work happened anyway and, if not, asks again under a fresh
key; never twice (captures, refunds and intents counted at the fake Stripe)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.stripe_server import FakeStripe
from tests.payment_flows import API, confirmed_with_stripe, reserved, wait_order

pytestmark = pytest.mark.pipeline


def keys(fake: FakeStripe, path_end: str) -> list[str]:
    return [key for method, path, key in fake.requests if method == "POST" and path.endswith(path_end)]


def test_a_capture_answered_500_before_it_was_made_is_made_under_a_fresh_key(
    client: Any, worker: Any, fake_stripe: FakeStripe
) -> None:
    headers, order, _ = reserved(client, "stripe")
    intent_id = order["payment"]["next_action"]["payment_intent_id"]
    fake_stripe.confirm(intent_id)
    fake_stripe.fail_next("capture", "stored_500")
    client.post(f"{API}/orders/{order['id']}/pay", json={"payment_intent_id": intent_id}, headers=headers)
    wait_order(client, headers, order["id"], "confirmed", "paid")
    assert fake_stripe.counts(intent_id)["capture"] == 1
    sent = keys(fake_stripe, f"/{intent_id}/capture")
    first = f"capture:{order['order_number']}"
    assert sent[0] == first and sent[-1].startswith(f"{first}:after-5xx:")


@pytest.mark.parametrize("mode", ["stored_500", "done_500"])
def test_a_refund_answered_500_is_made_once(client: Any, worker: Any, fake_stripe: FakeStripe, mode: str) -> None:
    headers, order, _, intent_id = confirmed_with_stripe(client, fake_stripe)
    fake_stripe.fail_next("refund", mode)  # done_500: Stripe refunded, then answered 500
    assert client.delete(f"{API}/orders/{order['id']}", headers=headers).status_code == 200
    wait_order(client, headers, order["id"], "cancelled", "refunded")
    assert fake_stripe.counts(intent_id)["refund"] == 1
    assert fake_stripe.counts(intent_id)["refunded_amount"] == order["total"]


@pytest.mark.parametrize("mode", ["stored_500", "done_500"])
def test_an_authorisation_answered_500_leaves_one_intent(
    client: Any, worker: Any, fake_stripe: FakeStripe, mode: str
) -> None:
    fake_stripe.fail_next("create", mode)  # done_500: the intent was made, then the answer was a 500
    headers, order, _ = reserved(client, "stripe")
    intent_id = order["payment"]["next_action"]["payment_intent_id"]
    mine = [i for i in fake_stripe.intents.values() if i["metadata"].get("order_number") == order["order_number"]]
    assert [i["id"] for i in mine] == [intent_id]
    assert mine[0]["amount"] == order["total"]
