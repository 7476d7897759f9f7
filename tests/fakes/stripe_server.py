"""A fake Stripe API (v1) as a real HTTP server, so the shop's adapter runs the official `stripe` SDK
unchanged with its API base pointed here.

What it covers, following Stripe's API reference:
- auth: `Authorization: Bearer sk_...` (401 otherwise); the publishable key plus the intent's
  `client_secret` may retrieve and confirm an intent, as Stripe.js does in the browser;
- bodies form-encoded with nested keys (`metadata[order_number]=...`, `expand[0]=...`); answers JSON;
- errors `{"error": {type, code, message, param, ...}}`: 402 card_error (with decline_code and the
  intent), 400 invalid_request_error (parameter_missing, resource_missing as 404,
  payment_intent_unexpected_state, charge_already_refunded, amount_too_large), 401, 429
  rate_limit, 500 api_error;
- idempotency: POSTs with `Idempotency-Key` store the first response (per API key) once the
  endpoint begins and replay it (`Idempotent-Replayed: true`); the same key with other parameters
  or another endpoint is 400 `idempotency_error`; a retry racing the first request is 409;
- PaymentIntents: create (capture_method manual or automatic, confirm=true), retrieve, confirm
  with a test payment method (`pm_card_visa` ... succeed; `pm_card_chargeDeclined`,
  `pm_card_chargeDeclinedInsufficientFunds`, `pm_card_chargeDeclinedExpiredCard` decline),
  capture (`amount_to_capture`), cancel; Refunds: create (by payment_intent or charge, `amount`),
  retrieve, list by payment_intent;
- events for each change (payment_intent.created / amount_capturable_updated / succeeded /
  payment_failed / canceled, charge.captured / refunded), kept in `.events` and POSTed to a URL
  the test gives, signed as Stripe signs them: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
  "<t>.<body>" with the endpoint secret>`.
Not covered: customers, payment methods as objects, 3-D Secure (requires_action), partial captures
leaving a remainder, disputes, pagination beyond one page.

Counts per intent (`counts(intent_id)`): create, confirm (authorisations), capture, cancel, refund,
and the amounts captured_amount / refunded_amount.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

from tests.fakes.base import FakeServer, LostResponse, Reply, Request, not_stored, post_json

API_VERSION = "2025-10-29.clover"
DECLINES = {
    "pm_card_chargeDeclined": ("card_declined", "generic_decline", "Your card was declined."),
    "pm_card_chargeDeclinedInsufficientFunds": ("card_declined", "insufficient_funds",
                                                "Your card has insufficient funds."),
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


class FakeStripe(FakeServer):
    CONTROL = FakeServer.CONTROL | {"confirm", "intent", "deliver_all", "set_webhook"}

    def __init__(self, api_key: str = "sk_test_fake_shop", publishable_key: str = "pk_test_fake_shop",
                 webhook_secret: str = "whsec_fake_shop") -> None:
        super().__init__()
        self.api_key, self.publishable_key, self.webhook_secret = api_key, publishable_key, webhook_secret
        self.intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.deliveries: list[tuple[str, int]] = []  # (event id, HTTP status; 0 = no answer)
        self.webhook_url: str | None = None
        self.auto_deliver = False
        self._ids = itertools.count(1)
        self._declined_next = False
        self._delivery_lock = threading.Lock()

    # ---- control (the browser's and the dashboard's side) ------------------------------------
    def confirm(self, intent_id: str, payment_method: str = "pm_card_visa") -> dict[str, Any]:
        """What Stripe.js does when the shopper enters a card: confirm the intent (no HTTP round trip)."""
        with self.lock:
            try:
                return self._confirm(self.intents[intent_id], payment_method)
            except StripeError as error:
                return error.reply.body

    def intent(self, intent_id: str) -> dict[str, Any]:
        with self.lock:
            return json.loads(json.dumps(self.intents[intent_id]))

    def reset(self) -> None:
        super().reset()
        self.webhook_url, self.auto_deliver, self._declined_next = None, False, False

    def set_webhook(self, url: str | None, auto_deliver: bool = True) -> None:
        """POST every new event to url as it happens (in a background thread, in order)."""
        self.webhook_url, self.auto_deliver = url, auto_deliver

    def sign(self, payload: str, timestamp: int | None = None, secret: str | None = None) -> str:
        """The Stripe-Signature header for payload."""
        t = int(time.time()) if timestamp is None else timestamp
        mac = hmac.new((secret or self.webhook_secret).encode(), f"{t}.{payload}".encode(), hashlib.sha256)
        return f"t={t},v1={mac.hexdigest()}"

    def deliver(self, event: dict[str, Any] | str, url: str | None = None, signature: str | None = None,
                timestamp: int | None = None) -> int:
        """POST one event (or an event id) to url, signed; returns the HTTP status (0: no answer)."""
        if isinstance(event, str):
            event = next(e for e in self.events if e["id"] == event)
        target = url or self.webhook_url
        assert target, "no webhook URL: pass url= or set_webhook()"
        payload = json.dumps(event, indent=2)
        header = signature if signature is not None else self.sign(payload, timestamp)
        status = post_json(target, payload.encode(), {"Stripe-Signature": header, "User-Agent": "Stripe/1.0"})
        with self.lock:
            self.deliveries.append((event["id"], status))
        return status

    def deliver_all(self, type_: str | None = None, url: str | None = None) -> list[int]:
        return [self.deliver(e, url) for e in list(self.events) if type_ is None or e["type"] == type_]

    def events_of(self, type_: str, intent_id: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if e["type"] == type_
                    and (intent_id is None or intent_id in (e["data"]["object"].get("id"),
                                                            e["data"]["object"].get("payment_intent")))]

    # ---- HTTP -------------------------------------------------------------------------------
    def route(self, request: Request) -> Reply:
        try:
            return self._route(request)
        except StripeError as error:
            return error.reply

    def _route(self, request: Request) -> Reply:
        params = decode_form(request.query if request.method == "GET" else request.body)
        credential = self._authenticate(request, params)
        parts = request.path.strip("/").split("/")
        if parts[:2] == ["v1", "payment_intents"]:
            if request.method == "POST" and len(parts) == 2:
                return self._mutate(request, credential, params, "create", lambda: self._create(params))
            intent = self._find(self.intents, parts[2], "payment_intent") if len(parts) > 2 else None
            if intent is not None and credential == "publishable" and params.get("client_secret") != \
                    intent["client_secret"]:
                raise StripeError(404, "invalid_request_error", f"No such payment_intent: '{intent['id']}'",
                                  "resource_missing", param="intent")
            if intent is not None and request.method == "GET" and len(parts) == 3:
                return self._read("retrieve", lambda: intent)
            action = parts[3] if len(parts) == 4 else ""
            if intent is not None and request.method == "POST" and action in ("confirm", "capture", "cancel"):
                if credential == "publishable" and action != "confirm":
                    raise self._auth_error()
                run = {"confirm": lambda: self._confirm(intent, params.get("payment_method", "")),
                       "capture": lambda: self._capture(intent, params),
                       "cancel": lambda: self._cancel(intent, params)}[action]
                return self._mutate(request, credential, params, action, run)
        if parts[:2] == ["v1", "refunds"] and credential == "secret":
            if request.method == "POST" and len(parts) == 2:
                return self._mutate(request, credential, params, "refund", lambda: self._refund(params))
            if request.method == "GET" and len(parts) == 3:
                refund = self._find(self.refunds, parts[2], "refund")
                return self._read("retrieve_refund", lambda: refund)
            if request.method == "GET" and len(parts) == 2:
                wanted = params.get("payment_intent")
                return self._read("list_refunds", lambda: {
                    "object": "list", "url": "/v1/refunds", "has_more": False,
                    "data": [r for r in reversed(self.refunds.values())
                             if wanted in (None, r["payment_intent"])]})
        raise StripeError(404, "invalid_request_error",
                          f"Unrecognized request URL ({request.method}: {request.path}).")

    def _authenticate(self, request: Request, params: dict[str, Any]) -> str:
        scheme, _, token = request.header("Authorization").partition(" ")
        if scheme == "Bearer" and hmac.compare_digest(token, self.api_key):
            return "secret"
        if scheme == "Bearer" and hmac.compare_digest(token, self.publishable_key) and "client_secret" in params:
            return "publishable"
        raise self._auth_error(token)

    def _auth_error(self, token: str = "") -> StripeError:
        shown = (token[:8] + "*" * 8) if token else ""
        return StripeError(401, "invalid_request_error", f"Invalid API Key provided: {shown}")

    def _find(self, table: dict[str, dict[str, Any]], object_id: str, kind: str) -> dict[str, Any]:
        if object_id not in table:
            raise StripeError(404, "invalid_request_error", f"No such {kind}: '{object_id}'", "resource_missing",
                              param="id")
        return table[object_id]

    def _headers(self, request_id: str, key: str = "", replayed: bool = False) -> dict[str, str]:
        headers = {"Request-Id": request_id, "Stripe-Version": API_VERSION}
        if key:
            headers["Idempotency-Key"] = key
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return headers

    def _fail_before(self, operation: str) -> None:
        failure = self.take_failure(operation, before=True)
        if failure is None:
            return
        if failure.mode == "decline":  # confirm declines through the card path (intent updated, event sent)
            if operation == "confirm":
                self._declined_next = True
                return
            raise StripeError(402, "card_error", "Your card was declined.", "card_declined",
                              decline_code="generic_decline")
        if failure.mode == "rate_limit":
            raise not_stored(StripeError(429, "invalid_request_error", "Too many requests.", "rate_limit").reply)
        raise not_stored(StripeError(500, "api_error", "An unknown error occurred").reply)

    def _read(self, operation: str, produce: Any) -> Reply:
        request_id = self._new("req")
        try:
            self._fail_before(operation)
        except Exception as error:
            reply = getattr(error, "reply", None)
            if reply is None:
                raise
            return Reply(reply.status, reply.body, self._headers(request_id))
        with self.lock:
            body = json.loads(json.dumps(produce()))
        self._fail_after(operation)
        return Reply(200, body, self._headers(request_id))

    def _fail_after(self, operation: str) -> None:
        lost = self.take_failure(operation, before=False)
        if lost is not None:
            raise LostResponse(lost.hold if lost.mode == "timeout" else 0)

    def _mutate(self, request: Request, credential: str, params: dict[str, Any], operation: str, run: Any) -> Reply:
        key = request.header("Idempotency-Key")
        request_id = self._new("req")

        def execute() -> Reply:
            with self.lock:
                try:
                    self._fail_before(operation)
                    body = json.loads(json.dumps(run()))
                    return Reply(200, body, self._headers(request_id, key))
                except StripeError as error:
                    return Reply(error.reply.status, error.reply.body, self._headers(request_id, key))

        def conflict() -> Reply:
            return StripeError(409, "invalid_request_error", "There is currently another in-progress request "
                               "using this Stripe-Idempotency-Key, please try again later.",
                               "idempotency_key_in_use").reply

        def mismatch() -> Reply:
            return StripeError(400, "idempotency_error", "Keys for idempotent requests can only be used with the "
                               "same parameters they were first used with. Try using a key other than "
                               f"'{key}' if you meant to execute a different request.").reply

        token = request.header("Authorization")
        fingerprint = (request.path, params)
        reply, replayed = self.idempotent(token, key, fingerprint, execute, conflict, mismatch)
        if replayed:
            reply = Reply(reply.status, reply.body, {**reply.headers, "Idempotent-Replayed": "true"})
        self._fail_after(operation)
        return reply

    # ---- the objects ------------------------------------------------------------------------
    def _new(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}{secrets.token_hex(8)}"

    def _event(self, type_: str, obj: dict[str, Any]) -> None:
        event = {"id": self._new("evt"), "object": "event", "api_version": API_VERSION, "created": int(time.time()),
                 "data": {"object": json.loads(json.dumps(obj))}, "livemode": False, "pending_webhooks": 1,
                 "request": {"id": None, "idempotency_key": None}, "type": type_}
        self.events.append(event)
        if self.webhook_url and self.auto_deliver:
            url = self.webhook_url
            threading.Thread(target=self._deliver_in_order, args=(event, url), daemon=True).start()

    def _deliver_in_order(self, event: dict[str, Any], url: str) -> None:
        with self._delivery_lock:
            self.deliver(event, url)

    def _create(self, params: dict[str, Any]) -> dict[str, Any]:
        for name in ("amount", "currency"):
            if name not in params:
                raise StripeError(400, "invalid_request_error", f"Missing required param: {name}.",
                                  "parameter_missing", param=name)
        try:
            amount = int(params["amount"])
        except ValueError:
            raise StripeError(400, "invalid_request_error", "Invalid integer: " + params["amount"],
                              "parameter_invalid_integer", param="amount") from None
        if amount < 1:
            raise StripeError(400, "invalid_request_error", "This value must be greater than or equal to 1.",
                              "parameter_invalid_integer", param="amount")
        intent_id = self._new("pi")
        intent = {"id": intent_id, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
                  "amount_received": 0, "capture_method": params.get("capture_method", "automatic_async"),
                  "client_secret": f"{intent_id}_secret_{secrets.token_hex(12)}", "confirmation_method": "automatic",
                  "created": int(time.time()), "currency": params["currency"].lower(),
                  "description": params.get("description"), "last_payment_error": None, "latest_charge": None,
                  "livemode": False, "metadata": params.get("metadata", {}), "next_action": None,
                  "payment_method": None, "payment_method_types": params.get("payment_method_types", ["card"]),
                  "status": "requires_payment_method", "canceled_at": None, "cancellation_reason": None}
        self.intents[intent_id] = intent
        self.count(intent_id, "create")
        self._event("payment_intent.created", intent)
        if str(params.get("confirm", "")).lower() == "true":
            return self._confirm(intent, params.get("payment_method", ""))
        return intent

    def _unexpected(self, intent: dict[str, Any], action: str, allowed: tuple[str, ...]) -> StripeError:
        return StripeError(400, "invalid_request_error",
                           f"You cannot {action} this PaymentIntent because it has a status of {intent['status']}. "
                           f"Only a PaymentIntent with one of the following statuses may be {action}ed: "
                           f"{', '.join(allowed)}.", "payment_intent_unexpected_state", payment_intent=intent)

    def _confirm(self, intent: dict[str, Any], payment_method: str) -> dict[str, Any]:
        allowed = ("requires_payment_method", "requires_confirmation")
        if intent["status"] not in allowed:
            raise self._unexpected(intent, "confirm", allowed)
        if not payment_method:
            raise StripeError(400, "invalid_request_error", "You cannot confirm this PaymentIntent because it's "
                              "missing a payment method.", "payment_intent_unexpected_state", param="payment_method")
        charge_id = self._new("ch")
        intent.update(payment_method=payment_method, latest_charge=charge_id)
        if self._declined_next or payment_method in DECLINES or payment_method not in GOOD_CARDS:
            self._declined_next = False
            code, decline_code, message = DECLINES.get(payment_method, ("card_declined", "generic_decline",
                                                                        "Your card was declined."))
            error = {"type": "card_error", "code": code, "decline_code": decline_code, "message": message,
                     "charge": charge_id}
            intent.update(status="requires_payment_method", last_payment_error=error)
            self.charges[charge_id] = self._charge(charge_id, intent, status="failed", captured=False)
            self._event("payment_intent.payment_failed", intent)
            raise StripeError(402, "card_error", message, code, decline_code=decline_code, charge=charge_id,
                              payment_intent=json.loads(json.dumps(intent)))
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
        return {"id": charge_id, "object": "charge", "amount": intent["amount"],
                "amount_captured": intent["amount"] if captured else 0, "amount_refunded": 0, "captured": captured,
                "currency": intent["currency"], "paid": status == "succeeded", "payment_intent": intent["id"],
                "refunded": False, "status": status, "metadata": intent["metadata"]}

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
            raise StripeError(400, "invalid_request_error", "The amount to capture must be a positive integer no "
                              "greater than the amount capturable.", "amount_too_large", param="amount_to_capture")
        return self._succeed(intent, amount)

    def _cancel(self, intent: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        if intent["status"] not in CANCELABLE:
            raise self._unexpected(intent, "cancel", CANCELABLE)
        intent.update(status="canceled", canceled_at=int(time.time()), amount_capturable=0,
                      cancellation_reason=params.get("cancellation_reason"))
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
            raise StripeError(400, "invalid_request_error", "One of the following params should be provided for "
                              "this request: payment_intent or charge.", "parameter_missing")
        if intent["status"] != "succeeded":
            raise self._unexpected(intent, "refund", ("succeeded",))
        remaining = charge["amount_captured"] - charge["amount_refunded"]
        if remaining <= 0:
            raise StripeError(400, "invalid_request_error", f"Charge {charge['id']} has already been refunded.",
                              "charge_already_refunded", charge=charge["id"])
        amount = int(params.get("amount", remaining))
        if amount > remaining or amount < 1:
            raise StripeError(400, "invalid_request_error", f"Refund amount ({amount}) is greater than unrefunded "
                              f"amount on charge ({remaining})", "amount_too_large", param="amount")
        refund = {"id": self._new("re"), "object": "refund", "amount": amount, "charge": charge["id"],
                  "currency": intent["currency"], "created": int(time.time()), "metadata": params.get("metadata", {}),
                  "payment_intent": intent["id"], "reason": params.get("reason"), "status": "succeeded"}
        self.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
        self.count(intent["id"], "refund")
        self.count(intent["id"], "refunded_amount", amount)
        self._event("charge.refunded", charge)
        return refund


if __name__ == "__main__":  # run on its own: python -m tests.fakes.stripe_server
    fake = FakeStripe().start()
    print(f"fake Stripe at {fake.url} (key {fake.api_key}, webhook secret {fake.webhook_secret})", flush=True)
    threading.Event().wait()
