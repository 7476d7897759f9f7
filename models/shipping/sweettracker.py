"""The Sweet Tracker (스마트택배) tracking API: one call, `trackingInfo`, turned into a report or
one of two errors, at this one boundary.

    GET {base}/api/v1/trackingInfo?t_key=&t_code=&t_invoice=
    -> 200 {level, complete, completeYN, invoiceNo, trackingDetails: [{time, timeString, kind,
       where, level, ...}], ...}
    -> 200 {"status": false, "code": "104", "msg": "..."} for every error (HTTP 200 regardless)

Errors:
    TrackingError              base: the answer says nothing about the parcel; ask again later
    ├── TrackingUnavailable    timeout, connection refused, HTTP error, a body that is not the
    │                          documented JSON, codes 105 (daily limit) / 106 (carrier lookup failed)
    │                          / anything unknown
    ├── TrackingKeyRejected    101-103: the API key is wrong, expired or out of quota (every
    │                          shipment fails until an operator acts)
    └── InvoiceUnknown         104: no such invoice for this carrier (yet: carriers know an invoice
                               only once the parcel is scanned; or the number was mistyped)
Levels: 1 preparing, 2 picked up, 3 in transit, 4 at the delivery branch, 5 out for delivery,
6 delivered. Times come in KST; reports carry them in UTC.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import requests

KST = timezone(timedelta(hours=9))
DELIVERED_LEVEL = 6
KEY_ERRORS = {"101", "102", "103"}
UNKNOWN_INVOICE = "104"


class TrackingError(Exception):
    """The carrier's answer told us nothing about the parcel; ask again later."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class TrackingUnavailable(TrackingError):
    """Timeout, connection error, HTTP error, an unreadable body, or a transient error code."""


class TrackingKeyRejected(TrackingError):
    """Codes 101-103: the API key is wrong, expired or over its quota."""


class InvoiceUnknown(TrackingError):
    """Code 104: the carrier has no such invoice (not scanned yet, or mistyped)."""


@dataclass(frozen=True)
class TrackingEvent:
    at: datetime  # UTC
    level: int
    kind: str  # what happened, in the carrier's words ("집화처리", "배송출발")
    where: str

    @property
    def key(self) -> str:
        """The same scan has the same key however often the carrier lists it."""
        raw = f"{self.at.isoformat()}|{self.level}|{self.kind}|{self.where}"
        return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class TrackingReport:
    invoice: str
    level: int  # 0 when the carrier has no scans yet
    delivered: bool
    events: tuple[TrackingEvent, ...]  # oldest first, each scan once

    @property
    def status_text(self) -> str | None:
        return self.events[-1].kind if self.events else None


def fetch(base_url: str, api_key: str, carrier: str, invoice: str, timeout: float = 10.0) -> TrackingReport:
    """Ask Sweet Tracker where a parcel is; raises a TrackingError subclass (see the module doc)."""
    if not base_url or not api_key:
        raise TrackingKeyRejected("config", "SWEETTRACKER_API_BASE and SWEETTRACKER_API_KEY must be set")
    url = base_url.rstrip("/") + "/api/v1/trackingInfo"
    params = {"t_key": api_key, "t_code": carrier, "t_invoice": invoice}
    try:
        response = requests.get(
            url, params=params, timeout=(min(timeout, 5.0), timeout), headers={"Accept": "application/json"}
        )
    except requests.Timeout as exc:
        raise TrackingUnavailable("timeout", f"no answer within {timeout:g}s") from exc
    except requests.RequestException as exc:
        raise TrackingUnavailable("connection", exc.__class__.__name__) from exc
    if response.status_code != 200:
        raise TrackingUnavailable(f"http_{response.status_code}", response.reason or "HTTP error")
    try:
        body = response.json()
    except ValueError as exc:
        raise TrackingUnavailable("bad_body", "the answer is not JSON") from exc
    if not isinstance(body, dict):
        raise TrackingUnavailable("bad_body", "the answer is not a JSON object")
    return parse(body, invoice)


def parse(body: dict[str, Any], invoice: str) -> TrackingReport:
    """A trackingInfo body as a report; raises the error its status/code says."""
    if body.get("status") is False or ("code" in body and "trackingDetails" not in body):
        code, message = str(body.get("code") or "unknown"), str(body.get("msg") or "")[:200]
        if code in KEY_ERRORS:
            raise TrackingKeyRejected(code, message)
        if code == UNKNOWN_INVOICE:
            raise InvoiceUnknown(code, message)
        raise TrackingUnavailable(code, message)
    details = body.get("trackingDetails")
    if not isinstance(details, list):
        raise TrackingUnavailable("bad_body", "trackingDetails is missing")
    events: dict[str, TrackingEvent] = {}
    for detail in details:
        event = _event(detail) if isinstance(detail, dict) else None
        if event is not None:
            events.setdefault(event.key, event)
    ordered = tuple(sorted(events.values(), key=lambda e: (e.at, e.level)))
    level = _int(body.get("level")) or max((e.level for e in ordered), default=0)
    delivered = (
        body.get("complete") is True
        or body.get("completeYN") == "Y"
        or level >= DELIVERED_LEVEL
        or any(e.level >= DELIVERED_LEVEL for e in ordered)
    )
    return TrackingReport(
        invoice=str(body.get("invoiceNo") or invoice), level=level, delivered=delivered, events=ordered
    )


def _event(detail: dict[str, Any]) -> TrackingEvent | None:
    at = _when(detail)
    if at is None:
        return None  # a scan without a readable time cannot be placed on the timeline
    return TrackingEvent(
        at=at,
        level=_int(detail.get("level")),
        kind=str(detail.get("kind") or "").strip(),
        where=str(detail.get("where") or "").strip(),
    )


def _when(detail: dict[str, Any]) -> datetime | None:
    text = str(detail.get("timeString") or "").strip()
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=KST).astimezone(UTC)
        except ValueError:
            continue
    epoch = _int(detail.get("time"))
    if epoch <= 0:
        return None
    seconds = epoch / 1000 if epoch > 10**11 else epoch  # milliseconds, as documented; seconds tolerated
    return datetime.fromtimestamp(int(seconds), UTC)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
