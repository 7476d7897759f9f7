"""The async Redis client's auto-pipelining (models.redis_client.command), on the real Redis: the
commands of one turn of the event loop go as one pipeline, each caller gets its own reply or its
own error, and the cart's Lua script survives a server that has forgotten it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis

from models.cart import store as cart
from models.infra import redis_client
from models.infra.redis_client import CommandBatch, command, get_redis


def test_concurrent_commands_go_as_one_pipeline_and_each_caller_gets_its_own_reply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    r = get_redis()
    for index in range(50):
        r.hset(f"batch:{index}", mapping={"n": index})
    sizes: list[int] = []
    real = CommandBatch._send

    def counted(self: CommandBatch, batch: list[Any]) -> None:
        sizes.append(len(batch))
        real(self, batch)

    monkeypatch.setattr(CommandBatch, "_send", counted)

    async def scenario() -> list[Any]:
        return await asyncio.gather(*(command("HGETALL", f"batch:{index}") for index in range(50)))

    replies = asyncio.run(scenario())
    assert replies == [{"n": str(index)} for index in range(50)]
    assert sizes == [50]  # one round trip for all fifty


def test_an_error_reaches_only_its_own_caller() -> None:
    r = get_redis()
    r.set("batch:string", "not a hash")
    r.hset("batch:hash", mapping={"a": 1})

    async def scenario() -> list[Any]:
        return await asyncio.gather(
            command("HGETALL", "batch:hash"),
            command("HGETALL", "batch:string"),
            command("HGETALL", "batch:hash"),
            return_exceptions=True,
        )

    first, wrong, third = asyncio.run(scenario())
    assert first == third == {"a": "1"}
    assert isinstance(wrong, redis.ResponseError) and "WRONGTYPE" in str(wrong)


def test_a_caller_that_gives_up_leaves_the_others_their_replies() -> None:
    get_redis().hset("batch:hash", mapping={"a": 1})

    async def scenario() -> tuple[Any, Any]:
        patient = asyncio.ensure_future(command("HGETALL", "batch:hash"))
        impatient = asyncio.ensure_future(command("HGETALL", "batch:hash"))
        await asyncio.sleep(0)
        impatient.cancel()
        return await patient, await asyncio.gather(impatient, return_exceptions=True)

    patient, (impatient,) = asyncio.run(scenario())
    assert patient == {"a": "1"} and isinstance(impatient, asyncio.CancelledError)


def test_cart_writes_survive_a_server_that_forgot_the_script() -> None:
    async def add(product_id: int) -> cart.Cart:
        async def rows(ids: list[int]) -> dict[int, Any]:
            return {pid: (pid, "Tee", "tee", "SKU", [], 1000, 10, True) for pid in ids}

        return await cart.add_item("session-forgetful", product_id, 1, rows)

    asyncio.run(add(1))
    get_redis().script_flush()  # a restarted or failed-over Redis
    assert [line.product_id for line in asyncio.run(add(2)).lines] == [1, 2]


def test_a_connection_failure_fails_every_command_of_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_client, "get_redis_url", lambda: "redis://127.0.0.1:1/0")  # nothing listens

    async def scenario() -> list[Any]:
        return await asyncio.gather(*(command("HGETALL", "batch:hash") for _ in range(3)), return_exceptions=True)

    assert all(isinstance(result, redis.ConnectionError) for result in asyncio.run(scenario()))
