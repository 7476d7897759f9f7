"""POST /orders/{id}/pay checks a member's access token against the user's row that the order's lock
brings (models/orders/payment_steps.submit), not with a read of its own: one round trip fewer on
the way from pay to confirmed. It still refuses what accounts.user_for refuses: a token revoked by
logout, an inactive member's, and a revoked token is 401 on another member's order too (not 404)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from models.tables import Order, User
from tests.support import assert_error, register_shopper, sql_sent
from tests.test_checkout_pipeline_flow import reserved_order

pytestmark = pytest.mark.pipeline
API = "/api/v1"


def pay(client: Any, order_id: int, headers: dict[str, str]) -> Any:
    return client.post(f"{API}/orders/{order_id}/pay", json={"token": "tok_ok"}, headers=headers)


def log_in(client: Any, email: str) -> dict[str, str]:
    tokens = client.post(f"{API}/auth/login", json={"email": email, "password": "shopper-pass-1"}).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def submitted(order_id: int) -> bool:
    return Order.get_by_id(order_id).payment_submitted_at is not None


def test_a_members_payment_reads_no_user_row_of_its_own(
    client: Any, worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    headers = register_shopper(client, "ana@example.com")
    order_id, _ = reserved_order(client, headers)
    with caplog.at_level(logging.DEBUG, logger="peewee"):
        assert pay(client, order_id, headers).status_code == 202
    sent = sql_sent(caplog.records)
    assert any("FOR UPDATE OF o" in sql and "LEFT JOIN users u" in sql for sql in sent), sent
    assert not [sql for sql in sent if 'FROM "users"' in sql], sent


def test_a_revoked_or_inactive_members_token_cannot_pay(client: Any, worker: Any) -> None:
    headers = register_shopper(client, "ana@example.com")
    order_id, _ = reserved_order(client, headers)

    assert client.post(f"{API}/auth/logout", headers=headers).status_code == 204
    assert_error(pay(client, order_id, headers), 401, "not_authenticated")
    assert not submitted(order_id)

    headers = log_in(client, "ana@example.com")
    User.update(is_active=False).where(User.email == "ana@example.com").execute()
    assert_error(pay(client, order_id, headers), 401, "not_authenticated")
    assert not submitted(order_id)

    User.update(is_active=True).where(User.email == "ana@example.com").execute()
    assert pay(client, order_id, headers).status_code == 202
    assert submitted(order_id)


def test_a_revoked_token_is_401_on_another_members_order_and_a_good_one_404(client: Any, worker: Any) -> None:
    owner = register_shopper(client, "ana@example.com")
    stranger = register_shopper(client, "eve@example.com")
    order_id, _ = reserved_order(client, owner)
    assert_error(pay(client, order_id, stranger), 404, "order_not_found")
    assert client.post(f"{API}/auth/logout", headers=stranger).status_code == 204
    assert_error(pay(client, order_id, stranger), 401, "not_authenticated")
    assert_error(pay(client, order_id + 1000, owner), 404, "order_not_found")
    assert not submitted(order_id)
