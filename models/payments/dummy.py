"""The dummy gateway: real gateway semantics (idempotency keys, declines, transient failures)
with its ledger in Redis, so the web process, the workers and the tests all see one ledger.

Tokens: tok_ok succeeds, tok_decline is declined, tok_error fails transiently once per
idempotency key and then succeeds; any other token is declined (invalid_token).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from models.errors import validation_error
from models.infra.redis_client import get_redis
from models.payments.base import Authorization, GatewayUnavailable, PaymentDeclined, PaymentOrder, PaymentResult

PREFIX = "dummy:"


@dataclass(frozen=True)
class DummyLedger:
    calls: dict[str, int]  # operation -> how many times it was called
    charges: dict[str, int]  # transaction id -> amount captured
    refunds: dict[str, int]  # transaction id -> amount refunded
    voids: list[str]


def _transaction_id(kind: str, idempotency_key: str) -> str:
    return f"dummy_{kind}_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]


class DummyGateway:
    name = "dummy"
    prepares_offline = True  # authorize() only counts the call in the ledger

    def _count(self, operation: str) -> None:
        get_redis().hincrby(PREFIX + "calls", operation, 1)

    def validate_proof(self, order: PaymentOrder, proof: dict[str, Any]) -> dict[str, Any]:
        """{token}; raises InvalidInput validation_error when token is missing or not a string."""
        token = proof.get("token")
        if not isinstance(token, str) or not token:
            raise validation_error({"token": "The dummy gateway needs a token (tok_ok, tok_decline, tok_error)."})
        return {"token": token}

    def authorize(self, order: PaymentOrder, idempotency_key: str) -> Authorization:
        self._count("authorize")
        return Authorization(None, {"type": "token"})

    def capture(self, order: PaymentOrder, proof: dict[str, Any], idempotency_key: str) -> PaymentResult:
        """Charge once per idempotency key; raises PaymentDeclined, GatewayUnavailable (tok_error, once).
        One Redis round trip for a charge (two for tok_error's retry), as one call to a real gateway."""
        token = proof.get("token")
        transaction_id = _transaction_id("ch", idempotency_key)
        pipe = get_redis().pipeline(transaction=False)
        pipe.hincrby(PREFIX + "calls", "capture", 1)
        if token == "tok_error":
            pipe.set(PREFIX + "errored:" + idempotency_key, 1, nx=True, ex=86400)
            if pipe.execute()[1]:
                raise GatewayUnavailable("dummy gateway: transient failure (tok_error)")
            pipe = get_redis().pipeline(transaction=False)
        elif token != "tok_ok":
            pipe.execute()
            code = "card_declined" if token == "tok_decline" else "invalid_token"
            raise PaymentDeclined(message="The card was declined.", decline_code=code)
        # HSETNX: a second capture with the same key (a redelivered task) finds the charge made.
        pipe.hsetnx(PREFIX + "charges", transaction_id, order.amount)
        pipe.hsetnx(PREFIX + "orders", order.order_number, transaction_id)  # found by order, as Toss finds them
        pipe.hget(PREFIX + "charges", transaction_id)
        captured = pipe.execute()[-1]
        return PaymentResult(transaction_id, "captured", int(captured or 0))

    def void(self, order: PaymentOrder, transaction_id: str | None, idempotency_key: str) -> PaymentResult:
        """Release the order's payment; one charged already (a capture whose answer was lost) comes
        back `captured` (the caller refunds it), as a real gateway's void does."""
        self._count("void")
        charged = self._charge(order, transaction_id)
        if charged is not None:
            return charged
        voided = transaction_id or _transaction_id("auth", idempotency_key)
        get_redis().sadd(PREFIX + "voids", voided)
        return PaymentResult(voided, "voided", 0)

    def _charge(self, order: PaymentOrder, transaction_id: str | None) -> PaymentResult | None:
        """The order's charge (by its id, else by the order number), captured or refunded; None if none."""
        redis = get_redis()
        found = transaction_id or redis.hget(PREFIX + "orders", order.order_number)
        if found is None:
            return None
        charge = str(found)
        if redis.hexists(PREFIX + "refunds", charge):
            return PaymentResult(charge, "refunded", int(redis.hget(PREFIX + "refunds", charge) or 0))
        captured = redis.hget(PREFIX + "charges", charge)
        return PaymentResult(charge, "captured", int(captured)) if captured is not None else None

    def refund(self, order: PaymentOrder, transaction_id: str, amount: int, idempotency_key: str) -> PaymentResult:
        """Refund once per transaction; raises PaymentDeclined for an unknown charge, ValueError above it."""
        self._count("refund")
        redis = get_redis()
        captured = redis.hget(PREFIX + "charges", transaction_id)
        if captured is None:
            raise PaymentDeclined(message="No such charge to refund.", decline_code="unknown_charge")
        captured_amount = int(captured)
        if amount > captured_amount:
            raise ValueError(f"refund {amount} exceeds the captured {captured_amount}")
        redis.hsetnx(PREFIX + "refunds", transaction_id, amount)
        return PaymentResult(transaction_id, "refunded", int(redis.hget(PREFIX + "refunds", transaction_id) or 0))

    def status(self, order: PaymentOrder, transaction_id: str | None) -> PaymentResult:
        """The charge by its id, or (None) the order's charge by the order number."""
        self._count("status")
        return self._charge(order, transaction_id) or PaymentResult(transaction_id or "", "pending", 0)

    @staticmethod
    def ledger() -> DummyLedger:
        """Everything the dummy gateway was asked to do (tests count calls against charges)."""
        redis = get_redis()
        pipe = redis.pipeline(transaction=False)
        for key in ("calls", "charges", "refunds"):
            pipe.hgetall(PREFIX + key)
        pipe.smembers(PREFIX + "voids")
        calls, charges, refunds, voids = pipe.execute()

        def as_int(d: dict[str, str]) -> dict[str, int]:
            return {k: int(v) for k, v in d.items()}

        return DummyLedger(as_int(calls), as_int(charges), as_int(refunds), sorted(voids))
