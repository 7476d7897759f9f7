"""The Sweet Tracker client against a fake that speaks the documented wire format: reports, the
same scan listed twice, and each way the service can fail mapped to one error class."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from models.shipping import sweettracker
from models.shipping.carriers import CARRIERS, get, normalize_tracking_number
from tests.fakes.sweettracker_server import KST, FakeSweetTracker


@pytest.fixture
def fake() -> Iterator[FakeSweetTracker]:
    with FakeSweetTracker(hang_seconds=10) as server:
        yield server


def fetch(fake: FakeSweetTracker, invoice: str = "640123456789", timeout: float = 5.0) -> sweettracker.TrackingReport:
    return sweettracker.fetch(fake.base_url, fake.api_key, "04", invoice, timeout=timeout)


def test_a_report_lists_scans_in_utc_with_level_and_delivery(fake: FakeSweetTracker) -> None:
    fake.advance("04", "640123456789", 2, where="서울금천", at=datetime(2026, 11, 30, 9, 2, 19, tzinfo=KST))
    fake.advance("04", "640123456789", 5, where="서울중구")
    report = fetch(fake)
    assert (report.level, report.delivered, len(report.events)) == (5, False, 2)
    first = report.events[0]
    assert first.at == datetime(2026, 11, 30, 0, 2, 19, tzinfo=UTC)  # 09:02:19 KST
    assert (first.level, first.kind, first.where) == (2, "집화처리", "서울금천")
    assert report.status_text == "배송출발"
    fake.advance("04", "640123456789", 6)
    report = fetch(fake)
    assert report.delivered and report.level == 6 and len(report.events) == 3


def test_the_same_scan_twice_is_one_event(fake: FakeSweetTracker) -> None:
    fake.advance("04", "640123456789", 3)
    fake.repeat_last("04", "640123456789")
    report = fetch(fake)
    assert len(report.events) == 1
    assert report.events[0].key == fetch(fake).events[0].key  # stable across polls


def test_a_registered_invoice_without_scans_is_level_one_and_empty(fake: FakeSweetTracker) -> None:
    fake.register("04", "640123456789")
    report = fetch(fake)
    assert (report.level, report.delivered, report.events) == (1, False, ())


def test_each_failure_maps_to_one_error(fake: FakeSweetTracker) -> None:
    fake.advance("04", "640123456789", 2)
    with pytest.raises(sweettracker.InvoiceUnknown) as unknown:
        fetch(fake, invoice="999999999999")
    assert unknown.value.code == "104"
    fake.fail_next("106")
    with pytest.raises(sweettracker.TrackingUnavailable) as unavailable:
        fetch(fake)
    assert unavailable.value.code == "106"
    fake.http_error_next(502)
    with pytest.raises(sweettracker.TrackingUnavailable, match="http_502"):
        fetch(fake)
    with pytest.raises(sweettracker.TrackingKeyRejected) as rejected:
        sweettracker.fetch(fake.base_url, "wrong-key", "04", "640123456789")
    assert rejected.value.code == "101"
    assert fetch(fake).level == 2  # and it answers again afterwards


def test_a_hanging_carrier_is_a_timeout(fake: FakeSweetTracker) -> None:
    fake.hang_next()
    with pytest.raises(sweettracker.TrackingUnavailable) as hung:
        fetch(fake, timeout=0.5)
    assert hung.value.code == "timeout"


def test_a_carrier_that_is_down_is_unavailable() -> None:
    server = FakeSweetTracker().start()
    base = server.base_url
    server.stop()
    with pytest.raises(sweettracker.TrackingUnavailable) as down:
        sweettracker.fetch(base, "key", "04", "640123456789", timeout=2)
    assert down.value.code == "connection"


def test_unreadable_bodies_are_unavailable_not_empty_reports() -> None:
    with pytest.raises(sweettracker.TrackingUnavailable):
        sweettracker.parse({"level": 3}, "1")
    with pytest.raises(sweettracker.TrackingUnavailable):
        sweettracker.parse({"status": False, "msg": "?"}, "1")
    report = sweettracker.parse(
        {
            "level": 3,
            "complete": False,
            "trackingDetails": [
                {"timeString": "not a time", "level": 3},
                {"time": 1796028781000, "level": 3, "kind": "간선상차"},
            ],
        },
        "1",
    )
    assert [e.kind for e in report.events] == ["간선상차"]


def test_carriers_and_tracking_numbers() -> None:
    assert {"04", "01", "05", "08", "06"} <= set(CARRIERS)
    assert get("04") is not None and get("04").name == "CJ대한통운"  # type: ignore[union-attr]
    assert get("99") is None and get(None) is None
    assert CARRIERS["06"].url_for("12345678901").endswith("/12345678901")
    assert normalize_tracking_number(" 6401-2345-6789 ") == "640123456789"
    assert normalize_tracking_number("ee123456789kr") == "EE123456789KR"
    assert normalize_tracking_number("12/34") is None and normalize_tracking_number("123") is None
