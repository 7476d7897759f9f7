"""The dummy gateway behaves like a real one: idempotency keys, declines, one transient error."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from models.errors import InvalidInput
from models.payments import GatewayUnavailable, PaymentDeclined, PaymentOrder, get_gateway
from models.payments.dummy import DummyGateway

ORDER = PaymentOrder("ORD-1", 27000, "KRW", "Linen Overshirt", "ana@example.com")


def test_tok_ok_captures_once_per_idempotency_key() -> None:
    gateway = get_gateway("dummy")
    first = gateway.capture(ORDER, {"token": "tok_ok"}, "capture:ORD-1")
    second = gateway.capture(ORDER, {"token": "tok_ok"}, "capture:ORD-1")
    assert first == second and first.status == "captured" and first.amount == 27000
    ledger = DummyGateway.ledger()
    assert ledger.calls["capture"] == 2 and ledger.charges == {first.transaction_id: 27000}


def test_concurrent_captures_with_one_key_charge_once() -> None:
    gateway = DummyGateway()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: gateway.capture(ORDER, {"token": "tok_ok"}, "capture:ORD-1"), range(16)))
    assert len({r.transaction_id for r in results}) == 1
    assert len(DummyGateway.ledger().charges) == 1


@pytest.mark.parametrize(("token", "code"), [("tok_decline", "card_declined"), ("tok_other", "invalid_token")])
def test_declines_are_final(token: str, code: str) -> None:
    with pytest.raises(PaymentDeclined) as declined:
        DummyGateway().capture(ORDER, {"token": token}, "capture:ORD-1")
    assert declined.value.details["decline_code"] == code
    assert DummyGateway.ledger().charges == {}


def test_tok_error_fails_once_then_succeeds() -> None:
    gateway = DummyGateway()
    with pytest.raises(GatewayUnavailable):
        gateway.capture(ORDER, {"token": "tok_error"}, "capture:ORD-1")
    assert gateway.capture(ORDER, {"token": "tok_error"}, "capture:ORD-1").status == "captured"


def test_refund_is_idempotent_and_bounded() -> None:
    gateway = DummyGateway()
    charge = gateway.capture(ORDER, {"token": "tok_ok"}, "capture:ORD-1")
    with pytest.raises(ValueError):
        gateway.refund(ORDER, charge.transaction_id, 27001, "refund:ORD-1")
    assert gateway.refund(ORDER, charge.transaction_id, 27000, "refund:ORD-1").status == "refunded"
    gateway.refund(ORDER, charge.transaction_id, 27000, "refund:ORD-1")
    assert DummyGateway.ledger().refunds == {charge.transaction_id: 27000}
    with pytest.raises(PaymentDeclined):
        gateway.refund(ORDER, "dummy_ch_unknown", 1, "refund:ORD-2")


def test_proof_needs_a_token_and_unknown_gateways_are_refused() -> None:
    with pytest.raises(InvalidInput) as invalid:
        DummyGateway().validate_proof(ORDER, {"token": 5})
    assert "token" in invalid.value.details["fields"]
    with pytest.raises(ValueError):
        get_gateway("paypal")
