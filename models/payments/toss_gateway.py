"""TossPayments: the payment widget authenticates the shopper, the shop confirms the payment
(`POST /v1/payments/confirm`), cancels it to refund or void, and looks it up to learn the truth.

Outcome unknown is not failure: a timeout, a dropped connection, a 5xx, PROVIDER_ERROR,
FAILED_INTERNAL_SYSTEM_PROCESSING, ALREADY_PROCESSED_PAYMENT or a racing idempotent request mean
"look it up" (`GET /v1/payments/{paymentKey}`) before deciding, so a paid order is never marked
failed. Card rejections are declines. A virtual account (가상계좌) confirm answers
WAITING_FOR_DEPOSIT: the result carries the account and the deposit secret Toss will send back.
"""

from __future__ import annotations

import base64
import logging
import threading
from datetime import datetime
from typing import Any

import requests

from models.errors import validation_error
from models.infra.settings import get_settings
from models.payments.base import (
    Authorization,
    GatewayRejected,
    GatewayUnavailable,
    ManualActionRequired,
    PaymentDeclined,
    PaymentOrder,
    PaymentResult,
)

log = logging.getLogger("shop.payments.toss")
DEFAULT_API_BASE = "https://api.tosspayments.com"
# Toss's answers that say nothing about whether the operation happened: look the payment up.
UNKNOWN_OUTCOME = frozenset(
    {
        "PROVIDER_ERROR",
        "FAILED_INTERNAL_SYSTEM_PROCESSING",
        "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING",
        "UNKNOWN_PAYMENT_ERROR",
        "ALREADY_PROCESSED_PAYMENT",
        "IDEMPOTENT_REQUEST_PROCESSING",
        "FAILED_REFUND_PROCESS",
        "FAILED_METHOD_HANDLING_CANCEL",
        "COMMON_ERROR",
        "FORBIDDEN_CONSECUTIVE_REQUEST",
    }
)
DECLINES = frozenset(
    {
        "REJECT_CARD_PAYMENT",
        "REJECT_CARD_COMPANY",
        "REJECT_ACCOUNT_PAYMENT",
        "REJECT_TOSSPAY_INVALID_ACCOUNT",
        "INVALID_STOPPED_CARD",
        "INVALID_CARD_EXPIRATION",
        "INVALID_CARD_NUMBER",
        "INVALID_CARD_LOST_OR_STOLEN",
        "INVALID_REJECT_CARD",
        "INVALID_CARD_INSTALLMENT_PLAN",
        "INVALID_PASSWORD",
        "INVALID_AUTHORIZE_AUTH",
        "EXCEED_MAX_DAILY_PAYMENT_COUNT",
        "EXCEED_MAX_PAYMENT_AMOUNT",
        "EXCEED_MAX_CARD_INSTALLMENT_PLAN",
        "EXCEED_MAX_AUTH_COUNT",
        "EXCEED_MAX_ONE_DAY_AMOUNT",
        "EXCEED_MAX_AMOUNT",
        "EXCEED_MAX_ONE_DAY_WITHDRAW_AMOUNT",
        "EXCEED_MAX_ONE_TIME_WITHDRAW_AMOUNT",
        "NOT_SUPPORTED_INSTALLMENT_PLAN_CARD_OR_MERCHANT",
        "BELOW_MINIMUM_AMOUNT",
        "RESTRICTED_TRANSFER_ACCOUNT",
        "NOT_AVAILABLE_BANK",
        "NOT_AVAILABLE_PAYMENT",
        "FDS_ERROR",
        "CARD_PROCESSING_ERROR",
        "NOT_FOUND_PAYMENT_SESSION",
        "INVALID_REQUEST",
    }
)
VOID_REASON, REFUND_REASON = "주문이 결제 전에 종료되었습니다", "주문 취소"
MISCONFIGURED = frozenset({"UNAUTHORIZED_KEY", "INCORRECT_BASIC_AUTH_FORMAT", "INVALID_API_KEY"})
# Toss bank codes (은행 코드) of the banks that issue virtual accounts.
BANKS = {
    "02": "KDB산업은행",
    "03": "IBK기업은행",
    "04": "KB국민은행",
    "07": "Sh수협은행",
    "11": "NH농협은행",
    "20": "우리은행",
    "23": "SC제일은행",
    "31": "iM뱅크",
    "32": "부산은행",
    "34": "광주은행",
    "35": "제주은행",
    "37": "전북은행",
    "39": "경남은행",
    "45": "새마을금고",
    "71": "우체국예금보험",
    "81": "하나은행",
    "88": "신한은행",
    "89": "케이뱅크",
    "90": "카카오뱅크",
    "92": "토스뱅크",
}


class _Unknown(Exception):
    """The call's outcome is unknown: look the payment up."""


class _Failed(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


_local = threading.local()


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


class TossGateway:
    name = "toss"
    prepares_offline = True  # the payment widget is opened by the client; authorize() calls no one

    def __init__(self) -> None:
        settings = get_settings()
        self.base = (settings.toss_api_base or DEFAULT_API_BASE).rstrip("/")
        self.auth = "Basic " + base64.b64encode(f"{settings.toss_secret_key}:".encode()).decode()
        self.timeout = settings.payment_http_timeout

    # ---- the wire ----------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, key: str | None = None) -> Any:
        """One request; raises _Unknown (no usable answer) or _Failed (Toss said no, with a code)."""
        headers = {"Authorization": self.auth}
        if key:
            headers["Idempotency-Key"] = key
        try:
            response = _session().request(method, self.base + path, json=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as error:
            raise _Unknown(f"toss {method} {path}: {type(error).__name__}") from error
        try:
            payload = response.json()
        except ValueError:
            raise _Unknown(f"toss {method} {path}: HTTP {response.status_code} without JSON") from None
        if response.status_code == 200:
            return payload
        code, message = str(payload.get("code", "")), str(payload.get("message", ""))
        if response.status_code >= 500 or response.status_code == 429 or code in UNKNOWN_OUTCOME:
            raise _Unknown(f"toss {method} {path}: {response.status_code} {code}")
        if code in MISCONFIGURED:
            log.error("toss refused our secret key (%s): %s", code, message, extra={"alert": "toss_auth"})
        raise _Failed(response.status_code, code, message)

    def _lookup(self, order: PaymentOrder, payment_key: str | None) -> dict[str, Any]:
        """The payment as Toss has it now; raises GatewayUnavailable when Toss cannot say."""
        path = f"/v1/payments/{payment_key}" if payment_key else f"/v1/payments/orders/{order.order_number}"
        try:
            return dict(self._call("GET", path))
        except _Unknown as error:
            raise GatewayUnavailable(str(error)) from error
        except _Failed as error:
            if error.code == "NOT_FOUND_PAYMENT":
                return {"status": "NOT_FOUND", "paymentKey": payment_key, "orderId": order.order_number}
            raise GatewayRejected(error.code, error.message) from error

    # ---- the interface -----------------------------------------------------------------------
    def validate_proof(self, order: PaymentOrder, proof: dict[str, Any]) -> dict[str, Any]:
        """{payment_key, amount}; raises InvalidInput validation_error / amount_mismatch."""
        from models.errors import InvalidInput

        key, amount = proof.get("payment_key"), proof.get("amount")
        if not isinstance(key, str) or not key:
            raise validation_error({"payment_key": "Toss payments need the payment_key from the widget."})
        if not isinstance(amount, int):
            raise validation_error({"amount": "Toss payments state the amount the widget charged."})
        if amount != order.amount:
            raise InvalidInput(
                "amount_mismatch", "The amount differs from the order total.", amount=amount, total=order.amount
            )
        return {"payment_key": key, "amount": amount}

    def authorize(self, order: PaymentOrder, idempotency_key: str) -> Authorization:
        return Authorization(
            None,
            {
                "type": "toss_widget",
                "order_id": order.order_number,
                "order_name": order.order_name,
                "amount": order.amount,
                "customer_email": order.customer_email,
                "customer_name": order.customer_name,
            },
        )

    def capture(self, order: PaymentOrder, proof: dict[str, Any], idempotency_key: str) -> PaymentResult:
        """Confirm the widget's payment; raises PaymentDeclined, GatewayUnavailable, GatewayRejected."""
        key = proof["payment_key"]
        body = {"paymentKey": key, "orderId": order.order_number, "amount": order.amount}
        try:
            payment = self._call("POST", "/v1/payments/confirm", body, idempotency_key)
        except _Unknown as error:
            log.warning("toss confirm of %s: %s; looking it up", order.order_number, error)
            payment = self._lookup(order, key)
            if payment["status"] in ("IN_PROGRESS", "READY", "NOT_FOUND"):
                raise GatewayUnavailable(f"toss confirm of {order.order_number} not done yet") from error
        except _Failed as error:
            if error.code in DECLINES:
                raise PaymentDeclined(
                    message=error.message or "The payment was declined.", decline_code=error.code, gateway="toss"
                ) from error
            raise GatewayRejected(error.code, error.message) from error
        result = self._result(order, payment)
        if result.status in ("failed", "voided", "refunded", "expired"):
            raise PaymentDeclined(
                message="The payment was not completed.", decline_code=payment.get("status", ""), gateway="toss"
            )
        return result

    def void(self, order: PaymentOrder, transaction_id: str | None, idempotency_key: str) -> PaymentResult:
        """Close an unpaid virtual account; a payment that turns out DONE comes back `captured`, one
        Toss may still approve (READY, IN_PROGRESS: a confirm in flight) `pending`: nothing to cancel
        yet, and Toss cancels only what it approved or issued."""
        payment = self._lookup(order, transaction_id)
        if payment["status"] == "NOT_FOUND":  # Toss holds nothing for this order
            return PaymentResult(transaction_id or "", "voided", 0, {"toss_status": "NOT_FOUND"})
        if payment["status"] == "WAITING_FOR_DEPOSIT":
            payment = self._cancel(order, payment["paymentKey"], None, VOID_REASON, idempotency_key)
        return self._result(order, payment)

    def refund(self, order: PaymentOrder, transaction_id: str, amount: int, idempotency_key: str) -> PaymentResult:
        """Cancel `amount` of a DONE payment once; raises ManualActionRequired for a deposited virtual
        account (Toss needs the shopper's bank account), GatewayUnavailable."""
        payment = self._lookup(order, transaction_id)
        result = self._result(order, payment)
        if result.status == "refunded":
            return result
        if payment.get("method") == "가상계좌" and payment["status"] == "DONE":
            raise ManualActionRequired(
                "a deposited virtual account is refunded to the shopper's bank account, "
                "which Toss needs in refundReceiveAccount"
            )
        return self._result(order, self._cancel(order, transaction_id, amount, REFUND_REASON, idempotency_key))

    def _cancel(
        self, order: PaymentOrder, payment_key: str, amount: int | None, reason: str, idempotency_key: str
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"cancelReason": reason}
        if amount is not None:
            body["cancelAmount"] = amount
        try:
            return dict(self._call("POST", f"/v1/payments/{payment_key}/cancel", body, idempotency_key))
        except _Unknown as error:
            log.warning("toss cancel of %s: %s; looking it up", order.order_number, error)
            payment = self._lookup(order, payment_key)
            if payment["status"] not in ("CANCELED", "PARTIAL_CANCELED"):
                raise GatewayUnavailable(f"toss cancel of {order.order_number} not done yet") from error
            return payment
        except _Failed as error:
            if error.code == "ALREADY_CANCELED_PAYMENT":
                return self._lookup(order, payment_key)
            raise GatewayRejected(error.code, error.message) from error

    def status(self, order: PaymentOrder, transaction_id: str | None) -> PaymentResult:
        return self._result(order, self._lookup(order, transaction_id))

    def _result(self, order: PaymentOrder, payment: dict[str, Any]) -> PaymentResult:
        key, status = str(payment.get("paymentKey") or ""), payment.get("status")
        raw = {"toss_status": status, "method": payment.get("method")}
        if status != "NOT_FOUND" and (
            payment.get("orderId") != order.order_number or payment.get("totalAmount") != order.amount
        ):
            raise PaymentDeclined(
                message="The payment is not this order's.", decline_code="payment_mismatch", gateway="toss"
            )
        if status == "DONE":
            return PaymentResult(key, "captured", int(payment["totalAmount"]), raw)
        if status in ("CANCELED", "PARTIAL_CANCELED"):
            cancelled = sum(int(c.get("cancelAmount", 0)) for c in payment.get("cancels") or [])
            if not payment.get("approvedAt"):  # a virtual account closed before any deposit
                return PaymentResult(key, "voided", 0, raw)
            if status == "CANCELED":
                return PaymentResult(key, "refunded", cancelled, raw)
            return PaymentResult(key, "captured", int(payment["totalAmount"]) - cancelled, raw)
        if status == "WAITING_FOR_DEPOSIT":
            account = payment.get("virtualAccount") or {}
            if account.get("expired"):
                return PaymentResult(key, "expired", 0, raw)
            return PaymentResult(
                key,
                "awaiting_deposit",
                0,
                raw,
                {"virtual_account": virtual_account(account), "secret": payment.get("secret")},
            )
        if status in ("ABORTED", "EXPIRED"):
            return PaymentResult(key, "failed" if status == "ABORTED" else "expired", 0, raw)
        return PaymentResult(key, "pending", 0, raw)  # READY, IN_PROGRESS, NOT_FOUND


def virtual_account(account: dict[str, Any]) -> dict[str, Any]:
    """Toss's virtualAccount as the contract's payment.virtual_account."""
    code = str(account.get("bankCode") or "")
    due = account.get("dueDate")
    return {
        "bank": BANKS.get(code, code),
        "bank_code": code,
        "account_number": account.get("accountNumber"),
        "holder": account.get("customerName"),
        "due_date": datetime.fromisoformat(due).isoformat() if due else None,
    }
