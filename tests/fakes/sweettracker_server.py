"""A fake Sweet Tracker (스마트택배) tracking API: a real HTTP server on 127.0.0.1, so the shop's
production tracking client runs unchanged against it.

It answers what the real service documents:
- `GET /api/v1/trackingInfo?t_key=&t_code=&t_invoice=` -> 200 with {result, invoiceNo, level,
  complete, completeYN, trackingDetails: [{time (epoch ms), timeString (KST), kind, where, level,
  code, telno, telno2, remark, manName, manPic}], firstDetail, lastDetail, lastStateDetail, ...};
- `GET /api/v1/companylist?t_key=` -> {Company: [{Code, International, Name}]};
- errors are HTTP 200 with {"status": false, "code": "...", "msg": "..."}: 101 for a wrong key, 104
  for an invoice (or carrier code) it does not know; 105/106 can be scripted.
Levels: 1 preparing, 2 picked up, 3 in transit, 4 at the branch, 5 out for delivery, 6 delivered.

Tests script a shipment through the control methods (`reset`, `register`, `advance`, `repeat_last`,
`fail_next`, `hang_next`, `http_error_next`) and read `requests`. The same controls are reachable
over HTTP under `/_control/` (JSON bodies) for a fake run as its own process:
`python -m tests.fakes.sweettracker_server --port 8780 --key dev-key`.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

KST = timezone(timedelta(hours=9), "KST")
COMPANIES = [
    ("04", "CJ대한통운"),
    ("01", "우체국택배"),
    ("05", "한진택배"),
    ("08", "롯데택배"),
    ("06", "로젠택배"),
    ("23", "경동택배"),
    ("46", "CU 편의점택배"),
    ("24", "GS Postbox 택배"),
]
KINDS = {1: "배송준비중", 2: "집화처리", 3: "간선상차", 4: "배달지점 도착", 5: "배송출발", 6: "배송완료"}
ERRORS = {
    "101": "유효하지 않은 API KEY 입니다.",
    "104": "유효하지 않은 운송장번호 이거나 택배사 코드 입니다.",
    "105": "같은 운송장의 하루 조회 한도를 넘었습니다.",
    "106": "택배사 조회 중 오류가 발생했습니다.",
}


@dataclass
class Shipment:
    carrier: str
    invoice: str
    details: list[dict[str, Any]] = field(default_factory=list)
    item_name: str = "상품"
    receiver_name: str = "김*지"

    @property
    def level(self) -> int:
        return max((d["level"] for d in self.details), default=1)

    @property
    def complete(self) -> bool:
        return self.level >= 6


@dataclass
class Scripted:
    """One scripted answer taken before the normal one: an error body, an HTTP status, or a hang."""

    kind: str  # "error" | "http" | "hang"
    code: str = ""
    msg: str = ""
    status: int = 0


class FakeSweetTracker:
    """Start with .start() (or as a context manager); .base_url is what SWEETTRACKER_API_BASE takes."""

    def __init__(self, api_key: str = "test-sweettracker-key", port: int = 0, hang_seconds: float = 30.0) -> None:
        self.api_key = api_key
        self.port = port
        self.hang_seconds = hang_seconds
        self.shipments: dict[tuple[str, str], Shipment] = {}
        self.requests: list[dict[str, str]] = []
        self._scripts: dict[tuple[str, str] | None, deque[Scripted]] = {}
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeSweetTracker:
        self._release.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-sweettracker", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # let hanging requests go
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeSweetTracker:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- the control API ---------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every invoice, scripted answer and request (between tests sharing one server)."""
        with self._lock:
            self.shipments.clear()
            self.requests.clear()
            self._scripts.clear()

    def register(self, carrier: str, invoice: str, item_name: str = "상품") -> Shipment:
        """The carrier has the invoice (level 1, no scans yet)."""
        with self._lock:
            shipment = self.shipments.setdefault((carrier, invoice), Shipment(carrier, invoice, item_name=item_name))
        return shipment

    def advance(
        self,
        carrier: str,
        invoice: str,
        level: int,
        where: str = "서울중앙",
        kind: str | None = None,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """Append a scan at this level (registering the invoice if needed); level 6 completes it."""
        if not 1 <= level <= 6:
            raise ValueError("level is 1..6")
        shipment = self.register(carrier, invoice)
        with self._lock:
            previous = shipment.details[-1]["time"] if shipment.details else 0
            moment = (at or datetime.now(KST)).astimezone(KST).replace(microsecond=0)
            millis = max(int(moment.timestamp()) * 1000, previous + 60_000)  # scans move forward in time
            moment = datetime.fromtimestamp(millis / 1000, KST)
            detail = {
                "time": millis,
                "timeString": moment.strftime("%Y-%m-%d %H:%M:%S"),
                "code": None,
                "where": where,
                "kind": kind or KINDS[level],
                "telno": "1588-1255",
                "telno2": "",
                "remark": None,
                "level": level,
                "manName": "",
                "manPic": "",
            }
            shipment.details.append(detail)
        return detail

    def repeat_last(self, carrier: str, invoice: str) -> None:
        """The carrier lists its last scan a second time (the same event, twice in one answer)."""
        with self._lock:
            shipment = self.shipments[(carrier, invoice)]
            shipment.details.append(dict(shipment.details[-1]))

    def fail_next(
        self,
        code: str = "106",
        msg: str | None = None,
        times: int = 1,
        carrier: str | None = None,
        invoice: str | None = None,
    ) -> None:
        """The next `times` tracking answers (for this invoice, or any) are {"status": false, code, msg}."""
        self._script(carrier, invoice, times, Scripted("error", code=code, msg=msg or ERRORS.get(code, "오류")))

    def http_error_next(
        self, status: int = 502, times: int = 1, carrier: str | None = None, invoice: str | None = None
    ) -> None:
        """The next `times` answers are an HTTP error with an HTML body, as a broken proxy sends."""
        self._script(carrier, invoice, times, Scripted("http", status=status))

    def hang_next(self, times: int = 1, carrier: str | None = None, invoice: str | None = None) -> None:
        """The next `times` requests get no answer for hang_seconds (or until stop()): a timeout."""
        self._script(carrier, invoice, times, Scripted("hang"))

    def tracking_requests(self, invoice: str | None = None) -> list[dict[str, str]]:
        with self._lock:
            return [
                r
                for r in self.requests
                if r["path"].endswith("/trackingInfo") and (invoice is None or r.get("t_invoice") == invoice)
            ]

    def _script(self, carrier: str | None, invoice: str | None, times: int, scripted: Scripted) -> None:
        key = (carrier or "", invoice) if invoice else None
        with self._lock:
            self._scripts.setdefault(key, deque()).extend([scripted] * times)

    def _take_script(self, carrier: str, invoice: str) -> Scripted | None:
        with self._lock:
            for key in ((carrier, invoice), ("", invoice), None):
                queue = self._scripts.get(key)
                if queue:
                    return queue.popleft()
        return None

    # -- answers -----------------------------------------------------------------------------
    def tracking_info(self, query: dict[str, str]) -> tuple[int, dict[str, Any] | str]:
        if query.get("t_key") != self.api_key:
            return 200, error_body("101")
        carrier, invoice = query.get("t_code", ""), query.get("t_invoice", "")
        scripted = self._take_script(carrier, invoice)
        if scripted is not None:
            if scripted.kind == "hang":
                self._release.wait(self.hang_seconds)
                return 200, error_body("106")
            if scripted.kind == "http":
                return scripted.status, f"<html><body><h1>{scripted.status}</h1></body></html>"
            return 200, error_body(scripted.code, scripted.msg)
        with self._lock:
            shipment = self.shipments.get((carrier, invoice))
            if shipment is None:
                return 200, error_body("104")
            return 200, tracking_body(shipment)

    def company_list(self, query: dict[str, str]) -> dict[str, Any]:
        if query.get("t_key") != self.api_key:
            return error_body("101")
        return {"Company": [{"Code": code, "International": "false", "Name": name} for code, name in COMPANIES]}

    def control(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """The HTTP face of the control methods: POST /_control/<action> with the same arguments."""
        actions = {
            "reset": self.reset,
            "register": self.register,
            "advance": self.advance,
            "repeat_last": self.repeat_last,
            "fail_next": self.fail_next,
            "http_error_next": self.http_error_next,
            "hang_next": self.hang_next,
        }
        if action == "requests":
            with self._lock:
                return {"requests": list(self.requests)}
        result = actions[action](**body)
        return {"ok": True, "detail": result if isinstance(result, dict) else None}


def error_body(code: str, msg: str | None = None) -> dict[str, Any]:
    return {"status": False, "code": code, "msg": msg or ERRORS.get(code, "오류")}


def tracking_body(shipment: Shipment) -> dict[str, Any]:
    details = [dict(d) for d in shipment.details]
    last_state = max(details, key=lambda d: (d["level"], d["time"])) if details else None
    return {
        "result": "Y",
        "senderName": "스토어",
        "receiverName": shipment.receiver_name,
        "itemName": shipment.item_name,
        "invoiceNo": shipment.invoice,
        "receiverAddr": "서울특별시 중구 ***",
        "orderNumber": None,
        "adUrl": None,
        "estimate": "14∼16시" if shipment.level == 5 else None,
        "level": shipment.level,
        "complete": shipment.complete,
        "completeYN": "Y" if shipment.complete else "N",
        "recipient": "",
        "itemImage": None,
        "productInfo": None,
        "zipCode": None,
        "trackingDetails": details,
        "firstDetail": details[0] if details else None,
        "lastDetail": details[-1] if details else None,
        "lastStateDetail": last_state,
    }


def _handler(fake: FakeSweetTracker) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "FakeSweetTracker/1"

        def log_message(self, *_: Any) -> None:  # quiet: tests read fake.requests instead
            pass

        def _send(self, status: int, body: dict[str, Any] | str) -> None:
            if isinstance(body, str):
                data, ctype = body.encode(), "text/html; charset=utf-8"
            else:
                data, ctype = json.dumps(body, ensure_ascii=False).encode(), "application/json;charset=UTF-8"
            try:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout)
                pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            with fake._lock:
                fake.requests.append({"path": url.path, **query})
            if url.path == "/api/v1/trackingInfo":
                self._send(*fake.tracking_info(query))
            elif url.path == "/api/v1/companylist":
                self._send(200, fake.company_list(query))
            else:
                self._send(404, {"status": 404, "error": "Not Found", "path": url.path})

        def do_POST(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            if not url.path.startswith("/_control/"):
                self._send(405, {"status": 405, "error": "Method Not Allowed", "path": url.path})
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                self._send(200, fake.control(url.path.removeprefix("/_control/"), body))
            except (KeyError, TypeError, ValueError) as exc:
                self._send(400, {"ok": False, "error": str(exc)})

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8780)
    parser.add_argument("--key", default="dev-sweettracker-key")
    args = parser.parse_args()
    fake = FakeSweetTracker(api_key=args.key, port=args.port).start()
    print(f"fake Sweet Tracker on {fake.base_url} (t_key={args.key}); Ctrl-C stops it", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
