"""Reading gateway webhooks: verify what can be verified, and reduce each delivery to a `Hint` (which
order, which payment, what the gateway says happened). A hint is never the truth: the order step
that receives it asks the gateway (models/orders/payment_sync.py) before moving anything.

Stripe signs every delivery (`Stripe-Signature`, checked with the SDK on the raw body, with its
timestamp tolerance). Toss signs neither DEPOSIT_CALLBACK nor PAYMENT_STATUS_CHANGED: a deposit
callback carries the payment's `secret`, which the order step compares with the one the confirm
returned, and everything else is only a reason to look the payment up.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

import orjson
import stripe

from models.errors import InvalidInput, validation_error
from models.infra.settings import get_settings
from models.infra.storable import refuse_unstorable

# Stripe events that mean the shopper's money is held or taken: enough to start the capture.
STRIPE_PAID = frozenset({"payment_intent.amount_capturable_updated", "payment_intent.succeeded"})
STRIPE_HANDLED = STRIPE_PAID | {"payment_intent.payment_failed", "payment_intent.canceled", "charge.refunded"}


@dataclass(frozen=True)
class Hint:
    gateway: str
    event_id: str
    event_type: str
    order_number: str | None
    reference: str | None  # the Stripe intent id or the Toss payment key
    says_paid: bool  # the event claims money is held or taken
    deposit_secret: str | None = None  # Toss DEPOSIT_CALLBACK only
    detail: dict[str, Any] | None = None


def secret_digest(secret: str) -> str:
    """What the order keeps of a deposit secret: enough to check a callback, useless to forge one."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str | None, digest: str | None) -> bool:
    return bool(secret and digest) and hmac.compare_digest(secret_digest(str(secret)), str(digest))


def stripe_hint(payload: bytes, signature: str | None) -> Hint:
    """Verify and read a Stripe event; raises InvalidInput invalid_signature."""
    secret = get_settings().stripe_webhook_secret
    if not secret:
        raise InvalidInput("invalid_signature", "Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET).")
    try:
        stripe.WebhookSignature.verify_header(
            payload.decode("utf-8"), signature, secret, stripe.Webhook.DEFAULT_TOLERANCE
        )
        event = json.loads(payload)
    except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError):
        raise InvalidInput("invalid_signature", "The Stripe-Signature header does not match the body.") from None
    obj = (event.get("data") or {}).get("object") or {}
    kind = str(event.get("type", ""))
    intent_id = obj.get("id") if obj.get("object") == "payment_intent" else obj.get("payment_intent")
    error = obj.get("last_payment_error") or {}
    detail = {"decline_code": error.get("decline_code") or error.get("code")} if error else None
    return Hint(
        "stripe",
        str(event.get("id", "")),
        kind[:64],
        (obj.get("metadata") or {}).get("order_number"),
        intent_id,
        kind in STRIPE_PAID,
        None,
        detail,
    )


def toss_hint(payload: bytes) -> Hint:
    """Read a Toss delivery (DEPOSIT_CALLBACK or PAYMENT_STATUS_CHANGED); raises InvalidInput."""
    try:
        body = orjson.loads(payload)  # nesting past 1,024 levels is a ValueError, not a RecursionError
        if not isinstance(body, dict):
            raise ValueError
    except ValueError:
        raise validation_error({"body": "A Toss webhook is a JSON object."}) from None
    refuse_unstorable(body)  # unsigned, and its ids are stored: NUL or a lone surrogate is a 422
    if "eventType" in body:  # PAYMENT_STATUS_CHANGED and friends: {eventType, createdAt, data: payment}
        raw = body.get("data")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        status, key = str(data.get("status", "")), data.get("paymentKey")
        event_id = f"{body['eventType']}:{key}:{status}:{data.get('lastTransactionKey')}"
        return Hint(
            "toss",
            event_id[:200],
            str(body["eventType"])[:64],
            data.get("orderId"),
            key,
            status == "DONE",
            None,
            {"status": status},
        )
    missing = [name for name in ("secret", "status", "orderId", "transactionKey") if not body.get(name)]
    if missing:
        raise validation_error({name: "Required in a DEPOSIT_CALLBACK." for name in missing})
    status = str(body["status"])
    return Hint(
        "toss",
        f"DEPOSIT_CALLBACK:{body['transactionKey']}:{status}"[:200],
        "DEPOSIT_CALLBACK",
        str(body["orderId"]),
        None,
        status == "DONE",
        str(body["secret"]),
        {"status": status},
    )
