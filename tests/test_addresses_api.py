"""Addresses over HTTP: the caller's own CRUD, at most one default, another user's address is 404."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from models.tables import Address
from tests.support import assert_error

API = "/api/v1/addresses"
HOME = {
    "recipient_name": "Kim Minji",
    "phone": "010-1234-5678",
    "postal_code": "04524",
    "address_line1": "1 Sejong-daero",
    "address_line2": "Apt 101",
    "city": "Seoul",
}
FIELDS = {
    "id",
    "recipient_name",
    "phone",
    "postal_code",
    "address_line1",
    "address_line2",
    "city",
    "is_default",
    "created_at",
    "updated_at",
}


def create(client: Any, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    response = client.post(API, json={**HOME, **overrides}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def defaults(client: Any, headers: dict[str, str]) -> list[int]:
    return [a["id"] for a in client.get(API, headers=headers).json()["items"] if a["is_default"]]


def test_crud_of_own_addresses(client: Any, user_headers: Any) -> None:
    assert client.get(API, headers=user_headers).json() == {"items": []}
    home = create(client, user_headers)
    assert set(home) == FIELDS and home["is_default"] is True  # the first address is the default
    assert "+00:00" in home["created_at"]
    office = create(client, user_headers, recipient_name="Kim Office", address_line2=None)
    assert office["is_default"] is False and office["address_line2"] is None
    changed = client.patch(
        f"{API}/{office['id']}", json={"city": "Busan", "address_line2": "Floor 3"}, headers=user_headers
    )
    assert changed.status_code == 200
    assert (changed.json()["city"], changed.json()["address_line2"], changed.json()["recipient_name"]) == (
        "Busan",
        "Floor 3",
        "Kim Office",
    )
    assert [a["id"] for a in client.get(API, headers=user_headers).json()["items"]] == [home["id"], office["id"]]
    assert client.delete(f"{API}/{office['id']}", headers=user_headers).status_code == 204
    assert [a["id"] for a in client.get(API, headers=user_headers).json()["items"]] == [home["id"]]
    assert_error(client.delete(f"{API}/{office['id']}", headers=user_headers), 404, "address_not_found")


def test_a_new_default_clears_the_old_one(client: Any, user_headers: Any) -> None:
    first = create(client, user_headers)
    second = create(client, user_headers, is_default=True)
    assert defaults(client, user_headers) == [second["id"]]
    third = create(client, user_headers, is_default=False)
    assert client.patch(f"{API}/{third['id']}", json={"is_default": True}, headers=user_headers).json()["is_default"]
    assert defaults(client, user_headers) == [third["id"]]
    assert [a["id"] for a in client.get(API, headers=user_headers).json()["items"]][0] == third["id"]
    client.patch(f"{API}/{third['id']}", json={"is_default": False}, headers=user_headers)
    assert defaults(client, user_headers) == []
    assert Address.select().where(Address.is_default == True).count() == 0  # noqa: E712
    assert first["id"] != second["id"]


def test_defaults_are_per_user(client: Any, make_user: Any) -> None:
    _, ana = make_user()
    _, bo = make_user()
    a = create(client, ana, is_default=True)
    b = create(client, bo, is_default=True)
    assert defaults(client, ana) == [a["id"]] and defaults(client, bo) == [b["id"]]


def test_concurrent_new_defaults_leave_exactly_one(app: Any, make_user: Any) -> None:
    from starlette.testclient import TestClient

    _, headers = make_user()
    statuses: list[int] = []
    barrier = threading.Barrier(6)

    def add(n: int) -> None:
        with TestClient(app) as tab:
            barrier.wait()
            statuses.append(
                tab.post(API, json={**HOME, "recipient_name": f"R{n}", "is_default": True}, headers=headers).status_code
            )

    threads = [threading.Thread(target=add, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [201] * 6
    assert Address.select().where(Address.is_default == True).count() == 1  # noqa: E712


def test_another_users_address_is_404(client: Any, make_user: Any) -> None:
    _, owner = make_user()
    _, other = make_user()
    address = create(client, owner)
    assert_error(client.patch(f"{API}/{address['id']}", json={"city": "X"}, headers=other), 404, "address_not_found")
    assert_error(client.delete(f"{API}/{address['id']}", headers=other), 404, "address_not_found")
    assert client.get(API, headers=other).json() == {"items": []}
    assert Address.get_by_id(address["id"]).city == "Seoul"
    for path in (f"{API}/424242", f"{API}/99999999999999999999"):
        assert_error(client.patch(path, json={"city": "X"}, headers=owner), 404, "address_not_found")
        assert_error(client.delete(path, headers=owner), 404, "address_not_found")


def test_addresses_need_a_valid_token(client: Any) -> None:
    assert_error(client.get(API), 401, "not_authenticated")
    assert_error(client.post(API, json=HOME), 401, "not_authenticated")
    assert_error(client.patch(f"{API}/1", json={}, headers={"Authorization": "Bearer junk"}), 401, "not_authenticated")
    assert_error(client.delete(f"{API}/1"), 401, "not_authenticated")


@pytest.mark.parametrize(
    ("overrides", "bad_fields"),
    [
        ({"phone": "call me"}, {"phone"}),
        ({"phone": 1012345678}, {"phone"}),
        ({"postal_code": "!!"}, {"postal_code"}),
        ({"recipient_name": "", "city": "x" * 101}, {"recipient_name", "city"}),
        ({"address_line1": "x" * 201, "address_line2": "y" * 201}, {"address_line1", "address_line2"}),
        ({"is_default": "yes"}, {"is_default"}),
        ({"user_id": 7}, {"user_id"}),
    ],
)
def test_create_refuses_bad_input(
    client: Any, user_headers: Any, overrides: dict[str, Any], bad_fields: set[str]
) -> None:
    error = assert_error(client.post(API, json={**HOME, **overrides}, headers=user_headers), 422, "validation_error")
    assert set(error["details"]["fields"]) == bad_fields
    assert Address.select().count() == 0


def test_create_lists_missing_fields_and_patch_refuses_nulls(client: Any, user_headers: Any) -> None:
    error = assert_error(client.post(API, json={}, headers=user_headers), 422, "validation_error")
    assert set(error["details"]["fields"]) == {"recipient_name", "phone", "postal_code", "address_line1", "city"}
    address = create(client, user_headers)
    error = assert_error(
        client.patch(f"{API}/{address['id']}", json={"city": None, "is_default": None}, headers=user_headers),
        422,
        "validation_error",
    )
    assert set(error["details"]["fields"]) == {"city", "is_default"}
    assert_error(client.patch(f"{API}/{address['id']}", content=b"[]", headers=user_headers), 422, "validation_error")
