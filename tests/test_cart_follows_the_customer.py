"""A cart that follows the customer: a request with an access token and X-Session-ID attaches the
session, merging its cart into the customer's (a product in both: the larger quantity, capped by
stock); afterwards the token alone or any attached session id serves that one cart. Sessions never
attached behave as before. Merges racing each other and racing writes lose nothing (one Lua script)."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from typing import Any

import pytest
import requests

from models.cart import owners
from models.cart import store as cart
from models.infra.redis_client import get_redis
from models.infra.settings import get_settings
from models.tables import Order, Product, User
from tests.support import assert_error, checkout_body, register_shopper, wait_for

API = "/api/v1"


def product(sku: str, stock: int = 10, **extra: Any) -> Product:
    return Product.create(
        sku=sku, name=sku, slug=sku.lower(), price=1000, stock_quantity=stock, tags=[], images=[], **extra
    )


def add(client: Any, headers: dict[str, str], product_id: int, quantity: int) -> Any:
    return client.post(f"{API}/cart/items", json={"product_id": product_id, "quantity": quantity}, headers=headers)


def lines(response: Any) -> dict[int, int]:
    assert response.status_code == 200, response.text
    return {line["product_id"]: line["quantity"] for line in response.json()["items"]}


@pytest.fixture
def shopper(client: Any) -> dict[str, str]:
    return register_shopper(client, "ana@example.com")


def test_logging_in_attaches_the_session_and_merges_carts_across_devices(client: Any, shopper: dict[str, str]) -> None:
    tee, cap, mug = product("TEE", stock=4), product("CAP"), product("MUG")
    phone, laptop = {"X-Session-ID": "phone-session"}, {"X-Session-ID": "laptop-session"}
    add(client, phone, tee.id, 2)
    add(client, phone, mug.id, 1)
    # Logged in on the phone: the phone's cart becomes the customer's.
    assert lines(client.get(f"{API}/cart", headers={**shopper, **phone})) == {tee.id: 2, mug.id: 1}
    assert lines(client.get(f"{API}/cart", headers=shopper)) == {tee.id: 2, mug.id: 1}
    # On the laptop, before logging in: an anonymous cart of its own.
    add(client, laptop, tee.id, 4)
    add(client, laptop, cap.id, 3)
    assert lines(client.get(f"{API}/cart", headers=laptop)) == {tee.id: 4, cap.id: 3}
    Product.update(stock_quantity=3).where(Product.id == tee.id).execute()  # sold elsewhere meanwhile
    # The merge caps by the catalogue cache's stock, which learns of the change from PostgreSQL's
    # announcement, a moment after the commit: wait for it, as a shopper's next request would.
    wait_for(
        lambda: any(
            line["product_id"] == tee.id and line["available_quantity"] == 3
            for line in client.get(f"{API}/cart", headers=laptop).json()["items"]
        ),
        what="the stock change to reach the catalogue cache",
    )
    merged = client.get(f"{API}/cart", headers={**shopper, **laptop})
    # tee: the larger of 2 and 4, capped by the 3 in stock; cap and mug carried over.
    assert lines(merged) == {tee.id: 3, cap.id: 3, mug.id: 1}
    assert merged.json()["session_id"] == "laptop-session"
    for headers in (shopper, phone, laptop):  # one cart, whichever id is sent
        assert lines(client.get(f"{API}/cart", headers=headers)) == {tee.id: 3, cap.id: 3, mug.id: 1}
    assert client.get(f"{API}/cart", headers=shopper).json()["session_id"] is None
    # Writes through any of them change that one cart.
    add(client, phone, cap.id, 1)
    add(client, shopper, mug.id, 1)
    assert lines(client.get(f"{API}/cart", headers={**shopper, **laptop})) == {tee.id: 3, cap.id: 4, mug.id: 2}
    assert client.delete(f"{API}/cart", headers=laptop).status_code == 204
    assert lines(client.get(f"{API}/cart", headers=shopper)) == {}


def test_attaching_again_changes_nothing_and_a_smaller_line_keeps_the_larger(
    client: Any, shopper: dict[str, str]
) -> None:
    tee = product("TEE", stock=10)
    session = {"X-Session-ID": "phone-session"}
    add(client, {**shopper, **session}, tee.id, 5)
    client.patch(f"{API}/cart/items/{tee.id}", json={"quantity": 2}, headers=shopper)
    # The session holds only a pointer now: reading with it again does not bring the 5 back.
    assert lines(client.get(f"{API}/cart", headers={**shopper, **session})) == {tee.id: 2}
    other = {"X-Session-ID": "tablet-session"}
    add(client, other, tee.id, 1)
    assert lines(client.get(f"{API}/cart", headers={**shopper, **other})) == {tee.id: 2}


def test_another_customer_on_the_same_device_gets_their_own_cart(client: Any, shopper: dict[str, str]) -> None:
    tee, cap = product("TEE"), product("CAP")
    device = {"X-Session-ID": "shared-device"}
    add(client, {**shopper, **device}, tee.id, 1)
    other = register_shopper(client, "bo@example.com")
    add(client, other, cap.id, 2)
    assert lines(client.get(f"{API}/cart", headers={**other, **device})) == {cap.id: 2}
    assert lines(client.get(f"{API}/cart", headers=device)) == {cap.id: 2}  # the session now follows bo
    assert lines(client.get(f"{API}/cart", headers=shopper)) == {tee.id: 1}


def test_anonymous_carts_are_unchanged_and_bad_input_is_refused(client: Any, shopper: dict[str, str]) -> None:
    tee = product("TEE")
    assert_error(client.get(f"{API}/cart"), 400, "invalid_session")
    assert_error(client.get(f"{API}/cart", headers={**shopper, "X-Session-ID": "bad session"}), 400, "invalid_session")
    assert_error(
        client.get(f"{API}/cart", headers={"Authorization": "Bearer nope", "X-Session-ID": "s-123456"}),
        401,
        "not_authenticated",
    )
    add(client, {"X-Session-ID": "anon-session"}, tee.id, 2)
    assert cart.get_quantities("anon-session") == {tee.id: 2}
    assert lines(client.get(f"{API}/cart", headers={"X-Session-ID": "anon-session"})) == {tee.id: 2}


def test_checkout_takes_the_customers_cart_and_a_paid_order_leaves_it(client: Any, shopper: dict[str, str]) -> None:
    tee = product("TEE")
    add(client, {"X-Session-ID": "phone-session"}, tee.id, 2)
    response = client.post(f"{API}/orders", json=checkout_body(), headers={**shopper, "X-Session-ID": "phone-session"})
    assert response.status_code == 202, response.text
    user = User.get(User.email == "ana@example.com")
    assert Order.get_by_id(response.json()["id"]).session_id == owners.customer_cart_id(user.id)
    assert response.json()["item_count"] == 2
    assert cart.remove_ordered(response.json()["order_number"], owners.customer_cart_id(user.id), {tee.id: 2})
    assert lines(client.get(f"{API}/cart", headers={"X-Session-ID": "phone-session"})) == {}


def test_the_sessions_pointer_lives_as_long_as_the_customer_shops_with_it(client: Any, shopper: dict[str, str]) -> None:
    """The pointer a session keeps to the customer's cart expires CART_TTL after its last use, not
    after the first login: otherwise a week after signing in, the session alone (a token that
    lapsed, the order's trim) finds an empty cart of its own."""
    tee = product("TEE")
    session = {"X-Session-ID": "phone-session"}
    add(client, session, tee.id, 1)
    assert lines(client.get(f"{API}/cart", headers={**shopper, **session})) == {tee.id: 1}
    pointer, ttl = get_redis(), get_settings().cart_ttl
    key = cart.cart_key("phone-session")
    pointer.expire(key, 60)  # as if the login were a week ago, less a minute
    assert lines(client.get(f"{API}/cart", headers={**shopper, **session})) == {tee.id: 1}
    assert ttl - 5 <= pointer.ttl(key) <= ttl
    pointer.expire(key, 60)
    assert lines(add(client, session, tee.id, 1)) == {tee.id: 2}  # a write through the session alone
    assert ttl - 5 <= pointer.ttl(key) <= ttl


def test_attaching_costs_one_round_trip_once_attached_and_for_an_empty_session(
    client: Any, shopper: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    user = User.get(User.email == "ana@example.com")
    sent: list[str] = []
    real = owners.command

    async def counted(name: str, *args: Any) -> Any:
        sent.append(name)
        return await real(name, *args)

    async def no_rows(product_ids: list[int]) -> dict[int, Any]:
        raise AssertionError(f"no catalogue lookup wanted, asked for {product_ids}")

    monkeypatch.setattr(owners, "command", counted)
    # A session with nothing in it: attached at once.
    assert asyncio.run(owners.attach("empty-session", user.id, no_rows)) == owners.customer_cart_id(user.id)
    assert sent == ["EVALSHA"] or sent == ["EVALSHA", "EVAL"]  # EVAL: a Redis that had not seen the script
    sent.clear()
    # Attached already: one round trip, which renews the pointer.
    assert asyncio.run(owners.attach("empty-session", user.id, no_rows)) == owners.customer_cart_id(user.id)
    assert sent == ["EVALSHA"]
    assert cart.resolve("empty-session") == owners.customer_cart_id(user.id)


def run_at_once(jobs: list[Callable[[], Any]]) -> None:
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def worker(job: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            job()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors


@pytest.mark.parametrize("seed", range(3))
def test_sessions_attaching_at_once_and_adds_racing_them_lose_nothing(live_server: Any, client: Any, seed: int) -> None:
    token = register_shopper(client, f"racer{seed}@example.com")
    products = [product(f"R-{n}", stock=500).id for n in range(6)]
    extra = product("EXTRA", stock=500).id
    rng = random.Random(seed)
    sessions = {
        f"device-{seed}-{n:02d}": {pid: rng.randint(1, 9) for pid in rng.sample(products, 3)} for n in range(12)
    }
    for session, held in sessions.items():
        for product_id, quantity in held.items():
            assert add(client, {"X-Session-ID": session}, product_id, quantity).status_code == 200

    def attach(session: str) -> Callable[[], Any]:
        def job() -> None:
            with requests.Session() as http:
                answer = http.get(
                    live_server.url + f"{API}/cart", headers={**token, "X-Session-ID": session}, timeout=30
                )
                assert answer.status_code == 200, answer.text

        return job

    def add_extra() -> None:
        with requests.Session() as http:
            answer = http.post(
                live_server.url + f"{API}/cart/items",
                json={"product_id": extra, "quantity": 1},
                headers=token,
                timeout=30,
            )
            assert answer.status_code == 200, answer.text

    run_at_once([attach(s) for s in sessions] + [add_extra] * 12)
    expected = {pid: max(held.get(pid, 0) for held in sessions.values()) for pid in products}
    expected = {pid: qty for pid, qty in expected.items() if qty} | {extra: 12}
    assert lines(client.get(f"{API}/cart", headers=token)) == expected
    for session in sessions:  # every device now reads the customer's cart
        assert cart.get_quantities(session) == expected


def test_an_abandoned_customer_cart_is_the_customers_for_the_reminder(client: Any, shopper: dict[str, str]) -> None:
    import time

    from models import events
    from models.infra.redis_client import get_redis
    from models.infra.settings import get_settings
    from models.orders.pipeline import sweep_abandoned_carts

    tee = product("TEE")
    add(client, {**shopper, "X-Session-ID": "phone-session"}, tee.id, 1)
    add(client, {"X-Session-ID": "anon-session"}, tee.id, 1)
    user = User.get(User.email == "ana@example.com")
    mine = owners.customer_cart_id(user.id)
    assert cart.owners([mine, "anon-session"]) == {mine: user.id}
    assert sorted(cart.abandoned_sessions(-1)) == sorted([mine, "anon-session"])
    idle_since = time.time() - get_settings().abandoned_cart_after - 60
    get_redis().zadd(cart.ACTIVITY_KEY, {mine: idle_since, "anon-session": idle_since})
    with events.collecting() as emitted:
        assert sweep_abandoned_carts() == 2
    assert emitted == [events.SendCartReminder(mine, user.id)]


def test_a_customer_cart_left_again_after_new_writes_is_reminded_again(
    client: Any, shopper: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A customer's cart id never changes, so the reminder is once per cart as last written, not once ever."""
    from models.infra.settings import get_settings
    from models.mail import send as mail
    from tests.smtp_sink import SMTPSink

    sink = SMTPSink().start()
    monkeypatch.setenv("SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("SMTP_PORT", str(sink.port))
    get_settings.cache_clear()
    try:
        tee, cap = product("TEE"), product("CAP")
        user = User.get(User.email == "ana@example.com")
        mine = owners.customer_cart_id(user.id)
        add(client, shopper, tee.id, 1)
        assert mail.send_cart_reminder(mine, user.id) is True
        assert mail.send_cart_reminder(mine, user.id) is False
        add(client, shopper, cap.id, 1)  # back, and left again
        assert mail.send_cart_reminder(mine, user.id) is True
        assert len(sink.messages) == 2
    finally:
        sink.stop()
        monkeypatch.undo()
        get_settings.cache_clear()
