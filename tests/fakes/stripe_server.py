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
  endpoint begins and replay it (`Idempotent-Replayed: true`), a 500 included (`stored_500`,
  `done_500`); the same key with other parameters or another endpoint is 400 `idempotency_error`;
  a retry racing the first request is 409;
- search: `GET /v1/payment_intents/search?query=metadata['key']:'value'` (that one clause);
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

The objects' rules are in stripe_objects.py; this module is the HTTP side: auth, routing,
idempotency, injected failures and webhook delivery.

Counts per intent (`counts(intent_id)`): create, confirm (authorisations), capture, cancel, refund,
and the amounts captured_amount / refunded_amount.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
from typing import Any

from tests.fakes.base import LostResponse, Reply, Request, not_stored, post_json
from tests.fakes.stripe_objects import API_VERSION, StripeError, StripeObjects, decode_form

__all__ = ["FakeStripe", "decode_form"]


class FakeStripe(StripeObjects):
    CONTROL = StripeObjects.CONTROL | {"confirm", "intent", "deliver_all", "set_webhook"}

    def __init__(
        self,
        api_key: str = "sk_test_fake_shop",
        publishable_key: str = "pk_test_fake_shop",
        webhook_secret: str = "whsec_fake_shop",
    ) -> None:
        super().__init__()
        self.api_key, self.publishable_key, self.webhook_secret = api_key, publishable_key, webhook_secret
        self.deliveries: list[tuple[str, int]] = []  # (event id, HTTP status; 0 = no answer)
        self.webhook_url: str | None = None
        self.auto_deliver = False
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
        self.refund_status_next = None

    def set_webhook(self, url: str | None, auto_deliver: bool = True) -> None:
        """POST every new event to url as it happens (in a background thread, in order)."""
        self.webhook_url, self.auto_deliver = url, auto_deliver

    def sign(self, payload: str, timestamp: int | None = None, secret: str | None = None) -> str:
        """The Stripe-Signature header for payload."""
        t = int(time.time()) if timestamp is None else timestamp
        mac = hmac.new((secret or self.webhook_secret).encode(), f"{t}.{payload}".encode(), hashlib.sha256)
        return f"t={t},v1={mac.hexdigest()}"

    def deliver(
        self,
        event: dict[str, Any] | str,
        url: str | None = None,
        signature: str | None = None,
        timestamp: int | None = None,
    ) -> int:
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
            return [
                e
                for e in self.events
                if e["type"] == type_
                and (
                    intent_id is None
                    or intent_id in (e["data"]["object"].get("id"), e["data"]["object"].get("payment_intent"))
                )
            ]

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
            if request.method == "GET" and parts[2:] == ["search"] and credential == "secret":
                return self._read("search", lambda: self._search(str(params.get("query", ""))))
            if request.method == "POST" and len(parts) == 2:
                return self._mutate(request, credential, params, "create", lambda: self._create(params))
            intent = self._find(self.intents, parts[2], "payment_intent") if len(parts) > 2 else None
            if (
                intent is not None
                and credential == "publishable"
                and params.get("client_secret") != intent["client_secret"]
            ):
                raise StripeError(
                    404,
                    "invalid_request_error",
                    f"No such payment_intent: '{intent['id']}'",
                    "resource_missing",
                    param="intent",
                )
            if intent is not None and request.method == "GET" and len(parts) == 3:
                return self._read("retrieve", lambda: intent)
            action = parts[3] if len(parts) == 4 else ""
            if intent is not None and request.method == "POST" and action in ("confirm", "capture", "cancel"):
                if credential == "publishable" and action != "confirm":
                    raise self._auth_error()
                run = {
                    "confirm": lambda: self._confirm(intent, params.get("payment_method", "")),
                    "capture": lambda: self._capture(intent, params),
                    "cancel": lambda: self._cancel(intent, params),
                }[action]
                return self._mutate(request, credential, params, action, run)
        if parts[:2] == ["v1", "refunds"] and credential == "secret":
            if request.method == "POST" and len(parts) == 2:
                return self._mutate(request, credential, params, "refund", lambda: self._refund(params))
            if request.method == "GET" and len(parts) == 3:
                refund = self._find(self.refunds, parts[2], "refund")
                return self._read("retrieve_refund", lambda: refund)
            if request.method == "GET" and len(parts) == 2:
                wanted = params.get("payment_intent")
                return self._read(
                    "list_refunds",
                    lambda: {
                        "object": "list",
                        "url": "/v1/refunds",
                        "has_more": False,
                        "data": [r for r in reversed(self.refunds.values()) if wanted in (None, r["payment_intent"])],
                    },
                )
        raise StripeError(404, "invalid_request_error", f"Unrecognized request URL ({request.method}: {request.path}).")

    def _search(self, query: str) -> dict[str, Any]:
        match = re.fullmatch(r"metadata\['([^']+)'\]:'([^']*)'", query.strip())
        if match is None:
            raise StripeError(400, "invalid_request_error", f"Unsupported search query: {query}", "parameter_invalid")
        name, value = match.groups()
        found = [i for i in reversed(self.intents.values()) if (i.get("metadata") or {}).get(name) == value]
        return {
            "object": "search_result",
            "url": "/v1/payment_intents/search",
            "has_more": False,
            "next_page": None,
            "data": found,
        }

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
            raise StripeError(
                404, "invalid_request_error", f"No such {kind}: '{object_id}'", "resource_missing", param="id"
            )
        return table[object_id]

    def _headers(self, request_id: str, key: str = "", replayed: bool = False) -> dict[str, str]:
        headers = {"Request-Id": request_id, "Stripe-Version": API_VERSION}
        if key:
            headers["Idempotency-Key"] = key
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return headers

    def _fail_before(self, operation: str) -> bool:
        """Raise the injected failure due before the work; True: fail with a 500 after it."""
        failure = self.take_failure(operation, before=True)
        if failure is None:
            return False
        if failure.mode == "done_500":
            return True
        if failure.mode == "stored_500":  # the endpoint began: the 500 is kept under the key
            raise self._server_error()
        if failure.mode == "decline":  # confirm declines through the card path (intent updated, event sent)
            if operation == "confirm":
                self._declined_next = True
                return False
            raise StripeError(
                402, "card_error", "Your card was declined.", "card_declined", decline_code="generic_decline"
            )
        if failure.mode == "rate_limit":
            raise not_stored(StripeError(429, "invalid_request_error", "Too many requests.", "rate_limit").reply)
        raise not_stored(self._server_error().reply)

    def _server_error(self) -> StripeError:
        return StripeError(500, "api_error", "An unknown error occurred")

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
            self.stall_if_due(operation)
            with self.lock:
                try:
                    fail_after_work = self._fail_before(operation)
                    body = json.loads(json.dumps(run()))
                    if fail_after_work:
                        raise self._server_error()
                    return Reply(200, body, self._headers(request_id, key))
                except StripeError as error:
                    return Reply(error.reply.status, error.reply.body, self._headers(request_id, key))

        def conflict() -> Reply:
            return StripeError(
                409,
                "invalid_request_error",
                "There is currently another in-progress request "
                "using this Stripe-Idempotency-Key, please try again later.",
                "idempotency_key_in_use",
            ).reply

        def mismatch() -> Reply:
            return StripeError(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the "
                "same parameters they were first used with. Try using a key other than "
                f"'{key}' if you meant to execute a different request.",
            ).reply

        token = request.header("Authorization")
        fingerprint = (request.path, params)
        reply, replayed = self.idempotent(token, key, fingerprint, execute, conflict, mismatch)
        if replayed:
            reply = Reply(reply.status, reply.body, {**reply.headers, "Idempotent-Replayed": "true"})
        self._fail_after(operation)
        return reply

    def _event_created(self, event: dict[str, Any]) -> None:
        if self.webhook_url and self.auto_deliver:
            url = self.webhook_url
            threading.Thread(target=self._deliver_in_order, args=(event, url), daemon=True).start()

    def _deliver_in_order(self, event: dict[str, Any], url: str) -> None:
        with self._delivery_lock:
            self.deliver(event, url)


if __name__ == "__main__":  # run on its own: python -m tests.fakes.stripe_server
    fake = FakeStripe().start()
    print(f"fake Stripe at {fake.url} (key {fake.api_key}, webhook secret {fake.webhook_secret})", flush=True)
    threading.Event().wait()
