"""/admin/discounts: staff create, list, read, change and delete discount codes; only staff (401
anonymous, 403 customers); bad input is a 422 naming the field; used_count is the pipeline's."""

from __future__ import annotations

from typing import Any

import pytest

from models.tables import Discount
from tests.support import assert_error

API = "/api/v1/admin/discounts"
SPRING = {
    "code": "spring-15",
    "kind": "percent",
    "value": 15,
    "min_subtotal": 30000,
    "starts_at": "2026-03-01T00:00:00+09:00",
    "ends_at": "2026-04-01T00:00:00+09:00",
    "usage_limit": 100,
    "per_customer_limit": 1,
}


def test_staff_manage_codes(client: Any, admin_headers: dict[str, str]) -> None:
    created = client.post(API, json=SPRING, headers=admin_headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (
        body
        | {
            "code": "SPRING-15",
            "kind": "percent",
            "value": 15,
            "min_subtotal": 30000,
            "usage_limit": 100,
            "per_customer_limit": 1,
            "used_count": 0,
            "remaining": 100,
            "active": True,
            "currency": "KRW",
        }
        == body
    )
    assert body["starts_at"].startswith("2026-02-28T15:00:00")  # stored as an instant, shown in UTC
    fixed = client.post(API, json={"code": "FLAT5000", "kind": "fixed", "value": 5000}, headers=admin_headers).json()
    assert fixed["usage_limit"] is None and fixed["remaining"] is None and fixed["min_subtotal"] == 0

    listed = client.get(API, headers=admin_headers).json()
    assert [d["code"] for d in listed["items"]] == ["FLAT5000", "SPRING-15"] and listed["total"] == 2
    assert [d["code"] for d in client.get(f"{API}?q=spr", headers=admin_headers).json()["items"]] == ["SPRING-15"]
    client.patch(f"{API}/{fixed['id']}", json={"active": False}, headers=admin_headers)
    assert [d["code"] for d in client.get(f"{API}?active=false", headers=admin_headers).json()["items"]] == ["FLAT5000"]

    changed = client.patch(
        f"{API}/{body['id']}", json={"value": 20, "ends_at": None, "usage_limit": None}, headers=admin_headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() | {"value": 20, "ends_at": None, "usage_limit": None, "min_subtotal": 30000} == changed.json()
    assert client.get(f"{API}/{body['id']}", headers=admin_headers).json()["value"] == 20

    assert client.delete(f"{API}/{body['id']}", headers=admin_headers).status_code == 204
    assert_error(client.get(f"{API}/{body['id']}", headers=admin_headers), 404, "discount_not_found")
    assert_error(client.delete(f"{API}/{body['id']}", headers=admin_headers), 404, "discount_not_found")
    assert_error(client.patch(f"{API}/999999", json={"active": True}, headers=admin_headers), 404, "discount_not_found")


def test_a_code_is_unique_in_any_case(client: Any, admin_headers: dict[str, str]) -> None:
    assert client.post(API, json=SPRING, headers=admin_headers).status_code == 201
    assert_error(
        client.post(API, json={**SPRING, "code": "Spring-15"}, headers=admin_headers), 409, "discount_code_taken"
    )
    other = client.post(API, json={**SPRING, "code": "OTHER"}, headers=admin_headers).json()
    assert_error(
        client.patch(f"{API}/{other['id']}", json={"code": "spring-15"}, headers=admin_headers),
        409,
        "discount_code_taken",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**SPRING, "kind": "half"}, "kind"),
        ({**SPRING, "value": 0}, "value"),
        ({**SPRING, "value": "15"}, "value"),
        ({**SPRING, "value": 101}, "value"),  # a percentage above 100
        ({**SPRING, "code": "no spaces"}, "code"),
        ({**SPRING, "code": ""}, "code"),
        ({**SPRING, "min_subtotal": -1}, "min_subtotal"),
        ({**SPRING, "starts_at": "2026-03-01T00:00:00"}, "starts_at"),  # no UTC offset
        ({**SPRING, "ends_at": "2026-02-01T00:00:00+09:00"}, "ends_at"),  # before starts_at
        ({**SPRING, "usage_limit": -1}, "usage_limit"),
        ({**SPRING, "per_customer_limit": 0}, "per_customer_limit"),
        ({**SPRING, "used_count": 5}, "used_count"),  # the pipeline's, never the staff's
        ({**SPRING, "active": "yes"}, "active"),
    ],
)
def test_bad_discounts_are_422_naming_the_field(
    client: Any, admin_headers: dict[str, str], body: dict[str, Any], field: str
) -> None:
    error = assert_error(client.post(API, json=body, headers=admin_headers), 422, "validation_error")
    assert field in error["details"]["fields"], error
    assert Discount.select().count() == 0


def test_a_limit_below_the_uses_held_is_refused(client: Any, admin_headers: dict[str, str]) -> None:
    created = client.post(API, json=SPRING, headers=admin_headers).json()
    Discount.update(used_count=7).where(Discount.id == created["id"]).execute()
    error = assert_error(
        client.patch(f"{API}/{created['id']}", json={"usage_limit": 6}, headers=admin_headers), 422, "validation_error"
    )
    assert "usage_limit" in error["details"]["fields"]
    assert (
        client.patch(f"{API}/{created['id']}", json={"usage_limit": 7}, headers=admin_headers).json()["remaining"] == 0
    )
    for patch, field in (
        ({"code": None}, "code"),
        ({"kind": "fixed", "value": None}, "value"),
        ({"value": 150}, "value"),
        ({"ends_at": "2026-01-01T00:00:00Z"}, "ends_at"),
    ):
        error = assert_error(
            client.patch(f"{API}/{created['id']}", json=patch, headers=admin_headers), 422, "validation_error"
        )
        assert field in error["details"]["fields"], (patch, error)


def test_only_staff(client: Any, user_headers: dict[str, str], admin_headers: dict[str, str]) -> None:
    created = client.post(API, json=SPRING, headers=admin_headers).json()
    calls = [
        ("get", API, None),
        ("post", API, SPRING),
        ("get", f"{API}/{created['id']}", None),
        ("patch", f"{API}/{created['id']}", {"active": False}),
        ("delete", f"{API}/{created['id']}", None),
    ]
    for method, url, body in calls:
        kwargs = {"json": body} if body is not None else {}
        assert_error(client.request(method.upper(), url, **kwargs), 401, "not_authenticated")
        assert_error(client.request(method.upper(), url, headers=user_headers, **kwargs), 403, "forbidden")
    assert Discount.get_by_id(created["id"]).active is True
    assert_error(client.get(f"{API}?page=0", headers=admin_headers), 422, "validation_error")
