"""The payment gateway interface: a few methods over frozen dataclasses, and the errors every
adapter turns its SDK's failures into, in one place per adapter:

    PaymentDeclined       the shopper's payment was refused: final, never retried
    GatewayUnavailable    the network, a timeout, a rate limit or the gateway's 5xx: retried with backoff
    GatewayRejected       the gateway refused the request itself (our bug or configuration: a bad key,
                          a reused idempotency key, an unexpected state); not retried, logged loudly
    ManualActionRequired  only a person can finish this (a virtual-account refund needs the
                          shopper's bank account); the order is flagged for operators
"""

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
    customer_name: str = ""
    # The gateway's id for this order's payment so far (a Stripe intent, a Toss payment key), if any.
    transaction_id: str | None = None


@dataclass(frozen=True)
class Authorization:
    """The result of authorize(): what the client needs to pay (the contract's next_action)."""

    transaction_id: str | None
    next_action: dict[str, Any]


@dataclass(frozen=True)
class PaymentResult:
    """The gateway's view of a payment. status: captured (the money is taken), authorized (held,
    not captured), awaiting_deposit (a virtual account waits for the transfer), pending (the shopper
    has not finished), voided, refunded, failed, expired (an unpaid virtual account's due date passed)."""

    transaction_id: str
    status: str
    amount: int
    raw: dict[str, Any] = field(default_factory=dict)
    # awaiting_deposit: {"virtual_account": {bank, bank_code, account_number, due_date, holder}, "secret": ...}
    details: dict[str, Any] = field(default_factory=dict)


class PaymentDeclined(DomainError):
    """The gateway refused the payment: final, never retried."""

    code = "payment_declined"
    default_message = "The payment was declined."


class GatewayUnavailable(Exception):
    """The gateway could not be reached or failed transiently: retry with backoff."""


class GatewayRejected(Exception):
    """The gateway refused the request (not a decline): `code` says why (the gateway's own code)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class ManualActionRequired(Exception):
    """The gateway cannot finish this without a person (e.g. a deposit refund needs a bank account)."""


class Gateway(Protocol):
    name: str
    # authorize() calls no one (it returns what the client needs to pay): it may run inside the
    # reservation's transaction, instead of in a transaction of its own after it.
    prepares_offline: bool

    def authorize(self, order: PaymentOrder, idempotency_key: str) -> Authorization: ...

    def capture(self, order: PaymentOrder, proof: dict[str, Any], idempotency_key: str) -> PaymentResult: ...

    def void(self, order: PaymentOrder, transaction_id: str | None, idempotency_key: str) -> PaymentResult: ...

    def refund(self, order: PaymentOrder, transaction_id: str, amount: int, idempotency_key: str) -> PaymentResult: ...

    # transaction_id None: the order's payment, found by its order number where the gateway can.
    def status(self, order: PaymentOrder, transaction_id: str | None) -> PaymentResult: ...

    def validate_proof(self, order: PaymentOrder, proof: dict[str, Any]) -> dict[str, Any]: ...
