"""Stripe: one manual-capture PaymentIntent per order, through the official SDK.

authorize creates the intent (the browser confirms it with Stripe.js), capture takes exactly the
order total once the intent is `requires_capture`, void cancels an uncaptured intent, refund
refunds a captured one, status reads the intent (and its refunds). Every mutating call carries the
step's idempotency key and the SDK's own network retries resend it, so a lost response is answered
from Stripe's idempotency store instead of charging again. SDK errors are mapped once, in `_mapped`.

A 5xx is different: Stripe keeps it under the key for 24 hours once the endpoint began, so asking
again with that key gets the same 500 (docs.stripe.com/api/idempotent_requests). After one, each
call reads whether the work happened anyway and, if not, asks again under a fresh key (`_once`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, TypeVar

import stripe

from models.infra.settings import get_settings
from models.payments.base import (
    Authorization,
    GatewayRejected,
    GatewayUnavailable,
    PaymentDeclined,
    PaymentOrder,
    PaymentResult,
)

log = logging.getLogger("shop.payments.stripe")
NETWORK_RETRIES = 2
UNCAPTURED = ("requires_payment_method", "requires_confirmation", "requires_action", "processing")
T = TypeVar("T")


class _ServerError(GatewayUnavailable):
    """Stripe answered 5xx; it replays that answer for the same idempotency key for 24 hours."""


@lru_cache(maxsize=4)
def _client(api_key: str, api_base: str, timeout: float) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base} if api_base else None,
        max_network_retries=NETWORK_RETRIES,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


@contextmanager
def _mapped(operation: str, order_number: str) -> Iterator[None]:
    """Translate the SDK's exceptions: a card error is a decline (final), the network, rate limits,
    a 409 (our key in use by a request still running: /pay's capture racing the webhook's) and
    Stripe's 5xx are GatewayUnavailable (retried), the rest is our bug or our configuration."""
    try:
        yield
    except stripe.CardError as error:
        decline_code = getattr(error.error, "decline_code", None) or error.code or "card_declined"
        raise PaymentDeclined(
            message=error.user_message or "The card was declined.", decline_code=decline_code, gateway="stripe"
        ) from error
    except (stripe.APIConnectionError, stripe.RateLimitError) as error:
        raise GatewayUnavailable(f"stripe {operation}: {type(error).__name__}") from error
    except stripe.IdempotencyError as error:
        # Our key was reused with other parameters: a bug that no retry can fix.
        log.error(
            "STRIPE IDEMPOTENCY ERROR on %s for order %s: %s",
            operation,
            order_number,
            error.user_message,
            extra={"order_number": order_number, "operation": operation, "alert": "stripe_idempotency_error"},
        )
        raise GatewayRejected("idempotency_error", f"stripe {operation}: {error.user_message}") from error
    except (stripe.AuthenticationError, stripe.PermissionError) as error:
        log.error(
            "stripe %s refused our API key: %s",
            operation,
            error.user_message,
            extra={"order_number": order_number, "alert": "stripe_auth"},
        )
        raise GatewayRejected("authentication", f"stripe {operation}: {error.user_message}") from error
    except stripe.StripeError as error:
        if error.http_status == 409:  # idempotency_key_in_use: a request with our key is still running
            raise GatewayUnavailable(f"stripe {operation}: HTTP 409 {error.code or ''}".rstrip()) from error
        if (error.http_status or 500) >= 500:
            raise _ServerError(f"stripe {operation}: HTTP {error.http_status}") from error
        raise GatewayRejected(error.code or "invalid_request", f"stripe {operation}: {error.user_message}") from error


class StripeGateway:
    name = "stripe"
    prepares_offline = False  # authorize() creates a PaymentIntent: a call to Stripe

    def __init__(self) -> None:
        settings = get_settings()
        self.client = _client(settings.stripe_api_key, settings.stripe_api_base, settings.payment_http_timeout)

    def validate_proof(self, order: PaymentOrder, proof: dict[str, Any]) -> dict[str, Any]:
        """{payment_intent_id}, which must be the intent created for this order; raises InvalidInput."""
        from models.errors import validation_error

        intent_id = proof.get("payment_intent_id")
        if not isinstance(intent_id, str) or not intent_id:
            raise validation_error({"payment_intent_id": "Stripe payments need payment_intent_id."})
        if intent_id != order.transaction_id:
            raise validation_error({"payment_intent_id": "This is not the payment intent of this order."})
        return {"payment_intent_id": intent_id}

    def _once(
        self, operation: str, order: PaymentOrder, key: str, call: Callable[[str], T], done: Callable[[], T | None]
    ) -> T:
        """call(key), mapped. After a 5xx (replayed for that key for 24 hours) done() reads whether
        the work happened anyway: its result if so; else call() again under a fresh key, once, the
        work having just been seen undone (a capture, a cancel and a full refund can happen once per
        intent whatever the key; authorize's done() looks for an intent made for the order)."""
        try:
            with _mapped(operation, order.order_number):
                return call(key)
        except _ServerError as error:
            found = done()
            if found is not None:
                return found
            fresh = f"{key}:after-5xx:{secrets.token_hex(6)}"
            log.warning(
                "stripe %s of %s answered %s, which Stripe keeps under %s: asking again as %s",
                operation,
                order.order_number,
                error,
                key,
                fresh,
                extra={"order_number": order.order_number, "operation": operation},
            )
            with _mapped(operation, order.order_number):
                return call(fresh)

    def authorize(self, order: PaymentOrder, idempotency_key: str) -> Authorization:
        params = {
            "amount": order.amount,
            "currency": order.currency.lower(),
            "capture_method": "manual",
            "payment_method_types": ["card"],
            "description": order.order_number,
            "metadata": {"order_number": order.order_number},
        }
        if order.customer_email:
            params["receipt_email"] = order.customer_email

        def create(key: str) -> Any:
            return self.client.v1.payment_intents.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": key},
            )

        def created() -> Any:  # a second intent would be a second thing the shopper could pay
            query = f"metadata['order_number']:'{order.order_number}'"
            with _mapped("search", order.order_number):
                found = self.client.v1.payment_intents.search(params={"query": query})
            usable = [i for i in found.data if i.status != "canceled" and i.amount == order.amount]
            return usable[0] if usable else None

        intent = self._once("authorize", order, idempotency_key, create, created)
        return Authorization(
            intent.id, {"type": "stripe_confirm", "client_secret": intent.client_secret, "payment_intent_id": intent.id}
        )

    def _intent(self, order: PaymentOrder, intent_id: str) -> Any:
        with _mapped("retrieve", order.order_number):
            intent = self.client.v1.payment_intents.retrieve(intent_id)
        if (intent.metadata.to_dict() if intent.metadata else {}).get("order_number") != order.order_number:
            raise PaymentDeclined(
                message="The payment intent belongs to another order.", decline_code="intent_mismatch", gateway="stripe"
            )
        return intent

    def capture(self, order: PaymentOrder, proof: dict[str, Any], idempotency_key: str) -> PaymentResult:
        """Capture exactly the order total; raises PaymentDeclined, GatewayUnavailable."""
        intent = self._intent(order, proof["payment_intent_id"])
        if intent.status == "canceled":
            raise PaymentDeclined(
                message="The payment was canceled before it was captured.",
                decline_code="payment_canceled",
                gateway="stripe",
            )
        if intent.status == "requires_capture":
            if intent.amount_capturable < order.amount:
                raise PaymentDeclined(
                    message="The authorised amount is less than the order total.",
                    decline_code="amount_mismatch",
                    gateway="stripe",
                )
            intent_id = intent.id

            def take(key: str) -> Any:
                return self.client.v1.payment_intents.capture(
                    intent_id, params={"amount_to_capture": order.amount}, options={"idempotency_key": key}
                )

            def taken() -> Any:
                again = self._intent(order, intent_id)
                return None if again.status == "requires_capture" else again

            try:
                intent = self._once("capture", order, idempotency_key, take, taken)
            except GatewayRejected as error:
                if error.code != "payment_intent_unexpected_state":
                    raise
                intent = self._intent(order, intent_id)  # captured meanwhile (under another key): say so
        return self._result(order, intent)

    def void(self, order: PaymentOrder, transaction_id: str | None, idempotency_key: str) -> PaymentResult:
        """Cancel an uncaptured intent; a captured one comes back as `captured` (the caller refunds)."""
        if not transaction_id:
            return PaymentResult("", "voided", 0)
        intent = self._intent(order, transaction_id)
        if intent.status in UNCAPTURED + ("requires_capture",):
            intent_id = intent.id

            def cancel(key: str) -> Any:
                return self.client.v1.payment_intents.cancel(
                    intent_id, params={"cancellation_reason": "abandoned"}, options={"idempotency_key": key}
                )

            def cancelled() -> Any:
                again = self._intent(order, intent_id)
                return None if again.status in UNCAPTURED + ("requires_capture",) else again

            try:
                intent = self._once("void", order, idempotency_key, cancel, cancelled)
            except GatewayRejected as error:
                if error.code != "payment_intent_unexpected_state":
                    raise
                intent = self._intent(order, transaction_id)  # captured meanwhile: say so
        return self._result(order, intent)

    def refund(self, order: PaymentOrder, transaction_id: str, amount: int, idempotency_key: str) -> PaymentResult:
        """Refund `amount` of the captured intent once; raises GatewayUnavailable."""

        def give_back(key: str) -> Any:
            return self.client.v1.refunds.create(
                params={
                    "payment_intent": transaction_id,
                    "amount": amount,
                    "metadata": {"order_number": order.order_number},
                },
                options={"idempotency_key": key},
            )

        def given_back() -> Any:  # the newest refund this shop made for the order, if any
            with _mapped("list_refunds", order.order_number):
                refunds = self.client.v1.refunds.list(params={"payment_intent": transaction_id, "limit": 100})
            ours = [
                r for r in refunds.data if r.metadata and r.metadata.to_dict().get("order_number") == order.order_number
            ]
            return ours[0] if ours else None

        try:
            refund = self._once("refund", order, idempotency_key, give_back, given_back)
        except GatewayRejected as error:
            if error.code != "charge_already_refunded":
                raise
            return self.status(order, transaction_id)
        raw = {"refund_id": refund.id, "refund_status": refund.status}
        if refund.status in ("succeeded", "pending"):  # pending: on its way back (as status() counts it)
            return PaymentResult(transaction_id, "refunded", refund.amount, raw)
        # failed, canceled, or requires_action (Stripe needs the customer's details first): nothing
        # has been given back, and asking again under the same key only replays this answer.
        return PaymentResult(transaction_id, "captured", 0, raw)

    def status(self, order: PaymentOrder, transaction_id: str | None) -> PaymentResult:
        """Stripe's view of the order's intent, as a PaymentResult (pending before there is one)."""
        if not transaction_id:
            return PaymentResult("", "pending", 0)
        return self._result(order, self._intent(order, transaction_id))

    def _result(self, order: PaymentOrder, intent: Any) -> PaymentResult:
        raw = {"intent_status": intent.status}
        if intent.status == "requires_capture":
            return PaymentResult(intent.id, "authorized", intent.amount_capturable, raw)
        if intent.status == "canceled":
            return PaymentResult(intent.id, "voided", 0, raw)
        if intent.status != "succeeded":
            error = intent.last_payment_error
            if error:
                raw["last_payment_error"] = {"code": error.code, "decline_code": getattr(error, "decline_code", None)}
            return PaymentResult(intent.id, "pending", 0, raw)
        with _mapped("list_refunds", order.order_number):
            refunds = self.client.v1.refunds.list(params={"payment_intent": intent.id, "limit": 100})
        refunded = sum(r.amount for r in refunds.data if r.status in ("succeeded", "pending"))
        if refunded and refunded >= intent.amount_received:
            return PaymentResult(intent.id, "refunded", refunded, raw)
        return PaymentResult(intent.id, "captured", intent.amount_received, raw)
