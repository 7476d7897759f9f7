"""A fake TossPayments core API (v1) as a real HTTP server, so the shop's adapter runs unchanged
with `requests` against it.

What it covers, following docs.tosspayments.com (API reference, 멱등키, 웹훅, 가상계좌):
- auth: `Authorization: Basic base64(secretKey + ":")`; anything else is 401 UNAUTHORIZED_KEY;
- JSON bodies; errors `{"code", "message"}` with Toss's statuses: 400 ALREADY_PROCESSED_PAYMENT,
  INVALID_REQUEST, PROVIDER_ERROR, ALREADY_CANCELED_PAYMENT; 403 REJECT_CARD_PAYMENT,
  NOT_CANCELABLE_PAYMENT, NOT_CANCELABLE_AMOUNT; 404 NOT_FOUND_PAYMENT(_SESSION); 409
  IDEMPOTENT_REQUEST_PROCESSING; 500 FAILED_INTERNAL_SYSTEM_PROCESSING;
- `Idempotency-Key` on POSTs: the first response is kept per (secret key, key, path) and replayed,
  whatever the body (as Toss documents: key + API key + URL + method); a retry racing the first
  request is 409;
- `POST /v1/payments/confirm` {paymentKey, orderId, amount}: a card payment becomes DONE; a
  virtual account (가상계좌) becomes WAITING_FOR_DEPOSIT with `virtualAccount` {accountType,
  accountNumber, bankCode, customerName, dueDate, refundStatus, expired, settlementStatus} and the
  payment's `secret`; confirming twice without a key is 400 ALREADY_PROCESSED_PAYMENT;
- `GET /v1/payments/{paymentKey}`, `GET /v1/payments/orders/{orderId}`;
- `POST /v1/payments/{paymentKey}/cancel` {cancelReason, cancelAmount?, refundReceiveAccount?}:
  full or partial; a deposited virtual account needs refundReceiveAccount;
- deposits: `deposit()` plays the bank transfer and POSTs DEPOSIT_CALLBACK {createdAt, secret,
  status, transactionKey, orderId} to the shop; `status_changed()` POSTs PAYMENT_STATUS_CHANGED
  {eventType, createdAt, data: payment}. Toss signs neither: the shop must check the secret or
  re-fetch the payment.
Not covered: the browser widget itself (`open_payment()` stands in for it: it creates the payment
the widget would, and returns its paymentKey), billing keys, escrow, cash receipts, payouts.

Counts per payment key (`counts(payment_key)`): confirm (approvals that took effect), deposit,
cancel, cancelled_amount.
"""

from __future__ import annotations

import base64
import hmac
import itertools
import json
import secrets
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

from tests.fakes.base import FakeServer, LostResponse, Reply, Request, not_stored, post_json

KST = timezone(timedelta(hours=9))
CARD_REJECTIONS = {
    "reject": (403, "REJECT_CARD_PAYMENT", "한도초과 혹은 잔액부족으로 결제에 실패했습니다."),
    "invalid_card": (400, "INVALID_CARD_NUMBER", "카드번호를 다시 확인해주세요."),
    "stopped_card": (400, "INVALID_STOPPED_CARD", "정지된 카드 입니다."),
}


class TossError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.reply = Reply(status, {"code": code, "message": message})


def _iso(moment: datetime) -> str:
    return moment.astimezone(KST).isoformat(timespec="seconds")


class FakeToss(FakeServer):
    CONTROL = FakeServer.CONTROL | {"open_payment", "deposit", "advance", "payment"}

    def __init__(self, secret_key: str = "test_sk_fake_shop", client_key: str = "test_ck_fake_shop") -> None:
        super().__init__()
        self.secret_key, self.client_key = secret_key, client_key
        self.payments: dict[str, dict[str, Any]] = {}
        self.callbacks: list[tuple[str, dict[str, Any], int]] = []  # (event type, body, HTTP status)
        self.webhook_url: str | None = None
        self._offset = timedelta()
        self._ids = itertools.count(1)
        self._declined_next = False

    # ---- the widget's and the bank's side (control) -------------------------------------------
    def now(self) -> datetime:
        return datetime.now(KST) + self._offset

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self._offset, self.webhook_url, self._declined_next = timedelta(), None, False

    def advance(self, seconds: float) -> None:
        """Move this fake's clock (due dates) forward."""
        with self.lock:
            self._offset += timedelta(seconds=seconds)

    def open_payment(
        self,
        order_id: str,
        amount: int,
        method: str = "카드",
        outcome: str = "ok",
        order_name: str = "order",
        customer_name: str = "김토스",
        due_in: float = 86400,
    ) -> str:
        """What the payment widget does before redirecting to successUrl: a payment awaiting the shop's
        confirm. method 카드 or 가상계좌; outcome ok or one of CARD_REJECTIONS. Returns the paymentKey."""
        key = f"tgen_{next(self._ids):04d}{secrets.token_hex(10)}"
        payment = {
            "mId": "tosspayments",
            "version": "2022-11-16",
            "lastTransactionKey": None,
            "paymentKey": key,
            "orderId": order_id,
            "orderName": order_name,
            "taxExemptionAmount": 0,
            "status": "IN_PROGRESS",
            "requestedAt": _iso(self.now()),
            "approvedAt": None,
            "useEscrow": False,
            "cultureExpense": False,
            "card": None,
            "virtualAccount": None,
            "transfer": None,
            "mobilePhone": None,
            "giftCertificate": None,
            "cashReceipt": None,
            "cashReceipts": None,
            "discount": None,
            "cancels": None,
            "secret": None,
            "type": "NORMAL",
            "easyPay": None,
            "country": "KR",
            "failure": None,
            "isPartialCancelable": True,
            "receipt": None,
            "checkout": None,
            "currency": "KRW",
            "totalAmount": amount,
            "balanceAmount": amount,
            "suppliedAmount": 0,
            "vat": 0,
            "taxFreeAmount": 0,
            "method": method,
            "_outcome": outcome,
            "_customer": customer_name,
            "_due": self.now() + timedelta(seconds=due_in),
        }
        with self.lock:
            self.payments[key] = payment
        return key

    def payment(self, payment_key: str) -> dict[str, Any]:
        with self.lock:
            return self._public(self.payments[payment_key])

    def deposit(self, payment_key: str, url: str | None = None, force: bool = False, secret: str | None = None) -> int:
        """The shopper transfers the money into the virtual account; Toss then POSTs DEPOSIT_CALLBACK
        to url. After the due date the bank refuses the transfer (ValueError) unless force (a deposit
        accepted just in time whose callback comes late). Returns the callback's HTTP status."""
        with self.lock:
            payment = self.payments[payment_key]
            if payment["status"] != "WAITING_FOR_DEPOSIT":
                raise ValueError(f"payment {payment_key} is {payment['status']}, not waiting for a deposit")
            if self.now() > payment["_due"] and not force:
                payment["virtualAccount"]["expired"] = True
                raise ValueError(f"virtual account of {payment_key} expired at {_iso(payment['_due'])}")
            transaction = self._transaction(payment)
            payment.update(status="DONE", approvedAt=_iso(self.now()))
            self.count(payment_key, "deposit")
            body = {
                "createdAt": self.now().strftime("%Y-%m-%dT%H:%M:%S.%f"),
                "secret": payment["secret"] if secret is None else secret,
                "status": "DONE",
                "transactionKey": transaction,
                "orderId": payment["orderId"],
            }
        return self._post("DEPOSIT_CALLBACK", body, url)

    def status_changed(self, payment_key: str, url: str | None = None) -> int:
        """POST PAYMENT_STATUS_CHANGED with the payment as it is now."""
        body = {
            "eventType": "PAYMENT_STATUS_CHANGED",
            "createdAt": self.now().strftime("%Y-%m-%dT%H:%M:%S.%f"),
            "data": self.payment(payment_key),
        }
        return self._post("PAYMENT_STATUS_CHANGED", body, url)

    def _post(self, event_type: str, body: dict[str, Any], url: str | None) -> int:
        target = url or self.webhook_url
        assert target, "no webhook URL: pass url= or set .webhook_url"
        status = post_json(target, json.dumps(body, ensure_ascii=False).encode(), {})
        with self.lock:
            self.callbacks.append((event_type, body, status))
        return status

    # ---- HTTP -------------------------------------------------------------------------------
    def route(self, request: Request) -> Reply:
        try:
            return self._route(request)
        except TossError as error:
            return error.reply

    def _route(self, request: Request) -> Reply:
        self._authenticate(request)
        parts = request.path.strip("/").split("/")
        if parts[:2] != ["v1", "payments"] or len(parts) < 3:
            raise TossError(404, "NOT_FOUND", "존재하지 않는 API 입니다.")
        if request.method == "POST" and parts[2:] == ["confirm"]:
            return self._mutate(request, "confirm", lambda body: self._confirm(body))
        if request.method == "POST" and len(parts) == 4 and parts[3] == "cancel":
            return self._mutate(request, "cancel", lambda body: self._cancel(parts[2], body))
        if request.method == "GET" and len(parts) == 3:
            return self._read("retrieve", lambda: self._find(parts[2]))
        if request.method == "GET" and len(parts) == 4 and parts[2] == "orders":
            return self._read("retrieve", lambda: self._by_order(parts[3]))
        raise TossError(404, "NOT_FOUND", "존재하지 않는 API 입니다.")

    def _authenticate(self, request: Request) -> None:
        scheme, _, token = request.header("Authorization").partition(" ")
        expected = base64.b64encode(f"{self.secret_key}:".encode()).decode()
        if scheme != "Basic" or not hmac.compare_digest(token, expected):
            raise TossError(401, "UNAUTHORIZED_KEY", "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다.")

    def _fail_before(self, operation: str) -> None:
        failure = self.take_failure(operation, before=True)
        if failure is None:
            return
        if failure.mode == "decline":
            if operation == "confirm":  # declined through the card path: the payment is ABORTED
                self._declined_next = True
                return
            raise TossError(*CARD_REJECTIONS["reject"])
        if failure.mode == "provider_error":
            raise not_stored(
                TossError(400, "PROVIDER_ERROR", "일시적인 오류가 발생했습니다. 잠시 후 다시 시도해주세요.").reply
            )
        if failure.mode == "rate_limit":
            raise not_stored(TossError(429, "TOO_MANY_REQUESTS", "요청이 너무 많습니다.").reply)
        raise not_stored(
            TossError(
                500,
                "FAILED_INTERNAL_SYSTEM_PROCESSING",
                "내부 시스템 처리 작업이 실패했습니다. 잠시 후 다시 시도해주세요.",
            ).reply
        )

    def _fail_after(self, operation: str) -> None:
        lost = self.take_failure(operation, before=False)
        if lost is not None:
            raise LostResponse(lost.hold if lost.mode == "timeout" else 0)

    def _read(self, operation: str, produce: Any) -> Reply:
        try:
            self._fail_before(operation)
        except Exception as error:
            if not hasattr(error, "reply"):
                raise
            return error.reply
        with self.lock:
            body = self._public(produce())
        self._fail_after(operation)
        return Reply(200, body)

    def _mutate(self, request: Request, operation: str, run: Any) -> Reply:
        try:
            body = json.loads(request.body or b"{}")
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            raise TossError(400, "INVALID_REQUEST", "잘못된 요청입니다.") from None

        def execute() -> Reply:
            self.stall_if_due(operation)
            with self.lock:
                try:
                    self._fail_before(operation)
                    return Reply(200, self._public(run(body)))
                except TossError as error:
                    return error.reply

        def conflict() -> Reply:
            return TossError(409, "IDEMPOTENT_REQUEST_PROCESSING", "이전 멱등 요청이 처리중입니다.").reply

        key = request.header("Idempotency-Key")
        reply, _ = self.idempotent(
            f"{request.header('Authorization')} {request.path}", key, None, execute, conflict, None
        )
        self._fail_after(operation)
        return reply

    # ---- payments ---------------------------------------------------------------------------
    def _public(self, payment: dict[str, Any]) -> dict[str, Any]:
        return json.loads(json.dumps({k: v for k, v in payment.items() if not k.startswith("_")}))

    def _find(self, payment_key: str) -> dict[str, Any]:
        if payment_key not in self.payments:
            raise TossError(404, "NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다.")
        payment = self.payments[payment_key]
        account = payment.get("virtualAccount")
        if account and payment["status"] == "WAITING_FOR_DEPOSIT" and self.now() > payment["_due"]:
            account["expired"] = True
        return payment

    def _by_order(self, order_id: str) -> dict[str, Any]:
        found = [p for p in self.payments.values() if p["orderId"] == order_id and p["status"] != "IN_PROGRESS"]
        if not found:
            raise TossError(404, "NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다.")
        return self._find(found[-1]["paymentKey"])

    def _transaction(self, payment: dict[str, Any]) -> str:
        payment["lastTransactionKey"] = secrets.token_hex(16).upper()
        return str(payment["lastTransactionKey"])

    def _confirm(self, body: dict[str, Any]) -> dict[str, Any]:
        for name in ("paymentKey", "orderId", "amount"):
            if name not in body:
                raise TossError(400, "INVALID_REQUEST", f"{name}는 필수 파라미터입니다.")
        payment = self.payments.get(str(body["paymentKey"]))
        if payment is None:
            raise TossError(
                404, "NOT_FOUND_PAYMENT_SESSION", "결제 시간이 만료되어 결제 진행 데이터가 존재하지 않습니다."
            )
        if payment["status"] != "IN_PROGRESS":
            raise TossError(400, "ALREADY_PROCESSED_PAYMENT", "이미 처리된 결제 입니다.")
        if body["orderId"] != payment["orderId"] or body["amount"] != payment["totalAmount"]:
            raise TossError(400, "INVALID_REQUEST", "요청한 결제 금액 혹은 주문번호가 결제 정보와 다릅니다.")
        outcome, self._declined_next = ("reject" if self._declined_next else payment["_outcome"]), False
        if outcome in CARD_REJECTIONS:
            status, code, message = CARD_REJECTIONS[outcome]
            payment.update(status="ABORTED", failure={"code": code, "message": message})
            raise TossError(status, code, message)
        self._transaction(payment)
        self.count(payment["paymentKey"], "confirm")
        if payment["method"] == "가상계좌":
            payment.update(
                status="WAITING_FOR_DEPOSIT",
                secret=f"ps_{secrets.token_urlsafe(18)}",
                virtualAccount={
                    "accountType": "일반",
                    "accountNumber": f"X{secrets.randbelow(10**13):013d}",
                    "bankCode": "20",
                    "customerName": payment["_customer"],
                    "dueDate": _iso(payment["_due"]),
                    "refundStatus": "NONE",
                    "expired": False,
                    "settlementStatus": "INCOMPLETED",
                    "refundReceiveAccount": None,
                },
            )
            return payment
        payment.update(
            status="DONE",
            approvedAt=_iso(self.now()),
            card={
                "amount": payment["totalAmount"],
                "issuerCode": "4V",
                "acquirerCode": "21",
                "number": "43301234****123*",
                "installmentPlanMonths": 0,
                "approveNo": "00000000",
                "useCardPoint": False,
                "cardType": "신용",
                "ownerType": "개인",
                "acquireStatus": "READY",
                "isInterestFree": False,
                "interestPayer": None,
            },
        )
        return payment

    def _cancel(self, payment_key: str, body: dict[str, Any]) -> dict[str, Any]:
        payment = self._find(payment_key)
        if not body.get("cancelReason"):
            raise TossError(400, "INVALID_REQUEST", "cancelReason는 필수 파라미터입니다.")
        if payment["status"] == "CANCELED":
            raise TossError(400, "ALREADY_CANCELED_PAYMENT", "이미 취소된 결제 입니다.")
        if payment["status"] not in ("DONE", "PARTIAL_CANCELED", "WAITING_FOR_DEPOSIT"):
            raise TossError(403, "NOT_CANCELABLE_PAYMENT", "취소 할 수 없는 결제 입니다.")
        amount = int(body.get("cancelAmount") or payment["balanceAmount"])
        if amount > payment["balanceAmount"] or amount < 1:
            raise TossError(403, "NOT_CANCELABLE_AMOUNT", "취소 할 수 없는 금액 입니다.")
        if (
            payment["method"] == "가상계좌"
            and payment["status"] != "WAITING_FOR_DEPOSIT"
            and not body.get("refundReceiveAccount")
        ):
            raise TossError(400, "INVALID_REFUND_ACCOUNT_INFO", "환불 계좌 정보가 필요합니다.")
        payment["balanceAmount"] -= amount
        payment["status"] = "CANCELED" if payment["balanceAmount"] == 0 else "PARTIAL_CANCELED"
        payment["cancels"] = (payment["cancels"] or []) + [
            {
                "transactionKey": self._transaction(payment),
                "cancelReason": body["cancelReason"],
                "taxExemptionAmount": 0,
                "canceledAt": _iso(self.now()),
                "cancelAmount": amount,
                "taxFreeAmount": 0,
                "refundableAmount": payment["balanceAmount"],
                "cancelStatus": "DONE",
                "cancelRequestId": None,
            }
        ]
        self.count(payment_key, "cancel")
        self.count(payment_key, "cancelled_amount", amount)
        return payment


if __name__ == "__main__":  # run on its own: python -m tests.fakes.toss_server
    fake = FakeToss().start()
    print(f"fake TossPayments at {fake.url} (secret key {fake.secret_key})", flush=True)
    threading.Event().wait()
