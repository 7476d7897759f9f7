"""The fake Stripe's objects and their rules: PaymentIntents (create, confirm with a test payment
method, capture, cancel), their charges and refunds, and the events each change emits. FakeStripe
(stripe_server.py) serves them over HTTP; the wire details (form decoding, errors) live here too."""

from __future__ import annotations

import itertools
import json
import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl

from tests.fakes.base import FakeServer, Reply

API_VERSION = "2025-10-29.clover"
DECLINES = {
    "pm_card_chargeDeclined": ("card_declined", "generic_decline", "Your card was declined."),
    "pm_card_chargeDeclinedInsufficientFunds": (
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    "pm_card_chargeDeclinedExpiredCard": ("expired_card", "expired_card", "Your card has expired."),
}
GOOD_CARDS = frozenset({"pm_card_visa", "pm_card_mastercard", "pm_card_amex", "pm_card_kr"})
CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing")


def decode_form(body: bytes | str) -> dict[str, Any]:
    """`a[b][c]=1&l[0]=x&l[1]=y` -> {"a": {"b": {"c": "1"}}, "l": ["x", "y"]} (Stripe's encoding)."""
    text = body.decode() if isinstance(body, bytes) else body
    result: dict[str, Any] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        parts = [name.split("[", 1)[0]] + re.findall(r"\[([^\]]*)\]", name)
        node: Any = result
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            child: Any = value if last else ([] if parts[i + 1] == "" or parts[i + 1].isdigit() else {})
            if isinstance(node, list):
                index = len(node) if part == "" else int(part)
                while len(node) <= index:
                    node.append(None)
                if node[index] is None or last:
                    node[index] = child
                node = node[index]
            elif last:
                node[part] = child
            else:
                node = node.setdefault(part, child)
    return result


class StripeError(Exception):
    def __init__(self, status: int, type_: str, message: str, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.reply = Reply(status, {"error": {"type": type_, "message": message, "code": code, **extra}})


class StripeObjects(FakeServer):
    """The objects' state and rules; every method is called with the fake's lock held."""

    def __init__(self) -> None:
        super().__init__()
        self.intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._declined_next = False
        # The status the next refund is created with (Stripe's pending, failed, requires_action,
        # canceled), then back to succeeded.
        self.refund_status_next: str | None = None

    def _event_created(self, event: dict[str, Any]) -> None:
        """Hook for the server: deliver the new event if a webhook is set."""

    def _new(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}{secrets.token_hex(8)}"

    def _event(self, type_: str, obj: dict[str, Any]) -> None:
        event = {
            "id": self._new("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "data": {"object": json.loads(json.dumps(obj))},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type_,
        }
        self.events.append(event)
        self._event_created(event)

    def _create(self, params: dict[str, Any]) -> dict[str, Any]:
        for name in ("amount", "currency"):
            if name not in params:
                raise StripeError(
                    400, "invalid_request_error", f"Missing required param: {name}.", "parameter_missing", param=name
                )
        try:
            amount = int(params["amount"])
        except ValueError:
            raise StripeError(
                400,
                "invalid_request_error",
                "Invalid integer: " + params["amount"],
                "parameter_invalid_integer",
                param="amount",
            ) from None
        if amount < 1:
            raise StripeError(
                400,
                "invalid_request_error",
                "This value must be greater than or equal to 1.",
                "parameter_invalid_integer",
                param="amount",
            )
        intent_id = self._new("pi")
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "capture_method": params.get("capture_method", "automatic_async"),
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(12)}",
            "confirmation_method": "automatic",
            "created": int(time.time()),
            "currency": params["currency"].lower(),
            "description": params.get("description"),
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": params.get("metadata", {}),
            "next_action": None,
            "payment_method": None,
            "payment_method_types": params.get("payment_method_types", ["card"]),
            "status": "requires_payment_method",
            "canceled_at": None,
            "cancellation_reason": None,
        }
        self.intents[intent_id] = intent
        self.count(intent_id, "create")
        self._event("payment_intent.created", intent)
        if str(params.get("confirm", "")).lower() == "true":
            return self._confirm(intent, params.get("payment_method", ""))
        return intent

    def _unexpected(self, intent: dict[str, Any], action: str, allowed: tuple[str, ...]) -> StripeError:
        return StripeError(
            400,
            "invalid_request_error",
            f"You cannot {action} this PaymentIntent because it has a status of {intent['status']}. "
            f"Only a PaymentIntent with one of the following statuses may be {action}ed: "
            f"{', '.join(allowed)}.",
            "payment_intent_unexpected_state",
            payment_intent=intent,
        )

    def _confirm(self, intent: dict[str, Any], payment_method: str) -> dict[str, Any]:
        allowed = ("requires_payment_method", "requires_confirmation")
        if intent["status"] not in allowed:
            raise self._unexpected(intent, "confirm", allowed)
        if not payment_method:
            raise StripeError(
                400,
                "invalid_request_error",
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                "payment_intent_unexpected_state",
                param="payment_method",
            )
        charge_id = self._new("ch")
        intent.update(payment_method=payment_method, latest_charge=charge_id)
        if self._declined_next or payment_method in DECLINES or payment_method not in GOOD_CARDS:
            self._declined_next = False
            code, decline_code, message = DECLINES.get(
                payment_method, ("card_declined", "generic_decline", "Your card was declined.")
            )
            error = {
                "type": "card_error",
                "code": code,
                "decline_code": decline_code,
                "message": message,
                "charge": charge_id,
            }
            intent.update(status="requires_payment_method", last_payment_error=error)
            self.charges[charge_id] = self._charge(charge_id, intent, status="failed", captured=False)
            self._event("payment_intent.payment_failed", intent)
            raise StripeError(
                402,
                "card_error",
                message,
                code,
                decline_code=decline_code,
                charge=charge_id,
                payment_intent=json.loads(json.dumps(intent)),
            )
        self.count(intent["id"], "confirm")
        intent["last_payment_error"] = None
        if intent["capture_method"] == "manual":
            intent.update(status="requires_capture", amount_capturable=intent["amount"])
            self.charges[charge_id] = self._charge(charge_id, intent, status="succeeded", captured=False)
            self._event("payment_intent.amount_capturable_updated", intent)
            return intent
        self.charges[charge_id] = self._charge(charge_id, intent, status="succeeded", captured=True)
        return self._succeed(intent, intent["amount"])

    def _charge(self, charge_id: str, intent: dict[str, Any], status: str, captured: bool) -> dict[str, Any]:
        return {
            "id": charge_id,
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": intent["amount"] if captured else 0,
            "amount_refunded": 0,
            "captured": captured,
            "currency": intent["currency"],
            "paid": status == "succeeded",
            "payment_intent": intent["id"],
            "refunded": False,
            "status": status,
            "metadata": {},
        }

    def _succeed(self, intent: dict[str, Any], amount: int) -> dict[str, Any]:
        charge = self.charges[intent["latest_charge"]]
        charge.update(captured=True, amount_captured=amount)
        intent.update(status="succeeded", amount_received=amount, amount_capturable=0)
        self.count(intent["id"], "capture")
        self.count(intent["id"], "captured_amount", amount)
        self._event("charge.captured", charge)
        self._event("payment_intent.succeeded", intent)
        return intent

    def _capture(self, intent: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        if intent["status"] != "requires_capture":
            raise self._unexpected(intent, "capture", ("requires_capture",))
        amount = int(params.get("amount_to_capture", intent["amount_capturable"]))
        if amount > intent["amount_capturable"] or amount < 1:
            raise StripeError(
                400,
                "invalid_request_error",
                "The amount to capture must be a positive integer no greater than the amount capturable.",
                "amount_too_large",
                param="amount_to_capture",
            )
        return self._succeed(intent, amount)

    def _cancel(self, intent: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        if intent["status"] not in CANCELABLE:
            raise self._unexpected(intent, "cancel", CANCELABLE)
        intent.update(
            status="canceled",
            canceled_at=int(time.time()),
            amount_capturable=0,
            cancellation_reason=params.get("cancellation_reason"),
        )
        self.count(intent["id"], "cancel")
        self._event("payment_intent.canceled", intent)
        return intent

    def _refund(self, params: dict[str, Any]) -> dict[str, Any]:
        if "charge" in params:
            charge = self._find(self.charges, params["charge"], "charge")
            intent = self.intents[charge["payment_intent"]]
        elif "payment_intent" in params:
            intent = self._find(self.intents, params["payment_intent"], "payment_intent")
            charge = self.charges.get(intent["latest_charge"] or "", {})
        else:
            raise StripeError(
                400,
                "invalid_request_error",
                "One of the following params should be provided for this request: payment_intent or charge.",
                "parameter_missing",
            )
        if intent["status"] != "succeeded":
            raise self._unexpected(intent, "refund", ("succeeded",))
        remaining = charge["amount_captured"] - charge["amount_refunded"]
        if remaining <= 0:
            raise StripeError(
                400,
                "invalid_request_error",
                f"Charge {charge['id']} has already been refunded.",
                "charge_already_refunded",
                charge=charge["id"],
            )
        amount = int(params.get("amount", remaining))
        if amount > remaining or amount < 1:
            raise StripeError(
                400,
                "invalid_request_error",
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})",
                "amount_too_large",
                param="amount",
            )
        refund = {
            "id": self._new("re"),
            "object": "refund",
            "amount": amount,
            "charge": charge["id"],
            "currency": intent["currency"],
            "created": int(time.time()),
            "metadata": params.get("metadata", {}),
            "payment_intent": intent["id"],
            "reason": params.get("reason"),
            "status": self.refund_status_next or "succeeded",
        }
        self.refund_status_next = None
        self.refunds[refund["id"]] = refund
        self.count(intent["id"], "refund")
        if refund["status"] in ("failed", "canceled", "requires_action"):
            # Stripe: a refund that failed (or waits for the customer) has given nothing back yet.
            refund["failure_reason"] = "unknown" if refund["status"] == "failed" else None
            return refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
        self.count(intent["id"], "refunded_amount", amount)
        self._event("charge.refunded", charge)
        return refund
