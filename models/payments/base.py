"""The payment gateway interface: a few methods over frozen dataclasses, and the two errors every
adapter turns its SDK's failures into (PaymentDeclined is final, GatewayUnavailable is retried)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from models.errors import DomainError


@dataclass(frozen=True)
class PaymentOrder:
    """What a gateway needs to know about an order."""

    order_number: str
    amount: int
    currency: str
    order_name: str
    customer_email: str


@dataclass(frozen=True)
class Authorization:
    """The result of authorize(): what the client needs to pay (the contract's next_action)."""

    transaction_id: str | None
    next_action: dict[str, Any]


@dataclass(frozen=True)
class PaymentResult:
    transaction_id: str
    status: str  # captured | voided | refunded | authorized | pending | failed
    amount: int
    raw: dict[str, Any] = field(default_factory=dict)


class PaymentDeclined(DomainError):
    """The gateway refused the payment: final, never retried."""

    code = "payment_declined"
    default_message = "The payment was declined."


class GatewayUnavailable(Exception):
    """The gateway could not be reached or failed transiently: retry with backoff."""


class Gateway(Protocol):
    name: str

    def authorize(self, order: PaymentOrder, idempotency_key: str) -> Authorization: ...

    def capture(self, order: PaymentOrder, proof: dict[str, Any], idempotency_key: str) -> PaymentResult: ...

    def void(self, order: PaymentOrder, transaction_id: str | None, idempotency_key: str) -> PaymentResult: ...

    def refund(self, order: PaymentOrder, transaction_id: str, amount: int, idempotency_key: str) -> PaymentResult: ...

    def status(self, order: PaymentOrder, transaction_id: str) -> PaymentResult: ...

    def validate_proof(self, order: PaymentOrder, proof: dict[str, Any]) -> dict[str, Any]: ...
