"""GET /orders/{id}/status compares If-None-Match weakly: a proxy that gzips the answer (nginx)
turns `"o1v3"` into `W/"o1v3"`, and the client sends that back. It must still get 304, and a long
poll must still hold until the order changes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from models.orders.states import announce
from models.tables import Order
from tests.support import wait_for
from web import etags

API = "/api/v1"


@pytest.fixture
def order_and_headers(make_user: Any) -> tuple[Order, dict[str, str]]:
    user, headers = make_user()
    order = Order.create(
        order_number="ORD-20261130-WEAKTAGS",
        user=user.id,
        currency="KRW",
        subtotal=1000,
        total=1000,
        shipping_address={},
        shipping_method="standard",
        payment_method="dummy",
        payment_gateway="dummy",
    )
    return order, headers


@pytest.mark.parametrize("sent", ['W/"{e}"', '"{e}"', '"other", W/"{e}"', 'W/"x" ,  "{e}"', "*"])
def test_a_weak_or_listed_etag_answers_304(
    client: Any, order_and_headers: tuple[Order, dict[str, str]], sent: str
) -> None:
    order, headers = order_and_headers
    first = client.get(f"{API}/orders/{order.id}/status", headers=headers)
    etag = first.headers["etag"].strip('"')
    again = client.get(f"{API}/orders/{order.id}/status", headers={**headers, "If-None-Match": sent.format(e=etag)})
    assert again.status_code == 304 and again.headers["etag"] == first.headers["etag"]


@pytest.mark.parametrize("sent", ['W/"o0v0"', '"o0v0"', "garbage", ""])
def test_another_etag_answers_200(client: Any, order_and_headers: tuple[Order, dict[str, str]], sent: str) -> None:
    order, headers = order_and_headers
    response = client.get(f"{API}/orders/{order.id}/status", headers={**headers, "If-None-Match": sent})
    assert response.status_code == 200 and response.json()["version"] == 1


def test_a_long_poll_with_a_weak_etag_is_held_until_the_order_changes(
    client: Any, order_and_headers: tuple[Order, dict[str, str]]
) -> None:
    order, headers = order_and_headers
    etag = client.get(f"{API}/orders/{order.id}/status", headers=headers).headers["etag"]
    weak = {**headers, "If-None-Match": f"W/{etag}"}
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(client.get, f"{API}/orders/{order.id}/status", params={"wait": "20"}, headers=weak)
        wait_for(lambda: client.app.state.waiters.waiting() == 1, what="the poll to be held")
        Order.update(version=Order.version + 1).where(Order.id == order.id).execute()
        announce(order.id)
        response = answer.result(timeout=30)
    assert response.status_code == 200 and response.json()["version"] == 2


def test_parsing() -> None:
    parsed = etags.if_none_match('W/"a", "b",W/"c" , junk')
    assert parsed.tags == {'"a"', '"b"', '"c"'} and not parsed.any
    assert parsed.matches('"a"') and parsed.matches('W/"b"') and not parsed.matches('"d"')
    assert not etags.if_none_match(None) and not etags.if_none_match("  ")
    assert etags.if_none_match("*").matches('"anything"')
    # Entries that are not a whole quoted tag match nothing, whatever they hold.
    assert etags.if_none_match('junk"a", "b"c, "d').tags == frozenset()
    assert etags.if_none_match(' ,, W/"a" ,"b"').tags == {'"a"', '"b"'}


def test_a_header_longer_than_any_storefront_sends_is_ignored() -> None:
    """A client sends back the one short ETag it was given. A longer header is ignored (answered in
    full), so neither parsing nor remembering it costs more than MAX_HEADER characters can."""
    padded = " " * (etags.MAX_HEADER - 6) + '"o1v1"'
    assert len(padded) == etags.MAX_HEADER and etags.if_none_match(padded).matches('"o1v1"')
    assert not etags.if_none_match(" " + padded)
    assert not etags.if_none_match(" " * 100_000 + "x")  # was a quadratic regular expression: ~20 s


def test_a_poll_with_a_huge_if_none_match_is_answered_in_full(
    client: Any, order_and_headers: tuple[Order, dict[str, str]]
) -> None:
    order, headers = order_and_headers
    huge = {**headers, "If-None-Match": " " * 16_000 + f'"o{order.id}v1"'}
    response = client.get(f"{API}/orders/{order.id}/status", headers=huge)
    assert response.status_code == 200 and response.json()["version"] == 1
