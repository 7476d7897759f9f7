"""`/webhooks/stripe` and `/webhooks/toss`: gateway events, verified, stored once per event id, and
handed to the order's reconciliation (models/orders/payment_sync.py), which asks the gateway before
it moves anything. A repeated delivery answers 200 and does nothing."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from models.orders import payment_sync
from models.payments import webhooks
from tasks.dispatch import perform
from web.api import Registry, run
from web.payments.schemas import WebhookOut

api = Registry()
TAGS = ["webhooks"]


async def _receive(hint: webhooks.Hint) -> dict[str, Any]:
    stored = await run(perform, payment_sync.receive_webhook, hint)
    return {"received": True, "duplicate": not stored}


@api.route(
    "POST",
    "/webhooks/stripe",
    summary="Stripe events, signed (Stripe-Signature on the raw body)",
    tags=TAGS,
    response=WebhookOut,
    errors=["invalid_signature"],
    headers={"Stripe-Signature": "t=<unix time>,v1=<HMAC-SHA256 of '<t>.<body>' with the endpoint secret>"},
)
async def stripe_events(request: Request) -> dict[str, Any]:
    return await _receive(webhooks.stripe_hint(await request.body(), request.headers.get("stripe-signature")))


@api.route(
    "POST",
    "/webhooks/toss",
    summary="TossPayments DEPOSIT_CALLBACK and PAYMENT_STATUS_CHANGED",
    tags=TAGS,
    response=WebhookOut,
    errors=["invalid_signature", "validation_error"],
)
async def toss_events(request: Request) -> dict[str, Any]:
    return await _receive(webhooks.toss_hint(await request.body()))
