"""A small HTTP/1.1 client over one keep-alive asyncio connection: what a pipeline shopper needs
(one request at a time, JSON bodies), at a fraction of a general client's CPU. The load generator
runs on the same cores as the shop, so every millisecond it spends per order is taken from the
system it measures."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import orjson

NO_BODY = {204, 304}


class Response:
    def __init__(self, status_code: int, headers: dict[str, str], content: bytes) -> None:
        self.status_code, self.headers, self.content = status_code, headers, content

    def json(self) -> Any:
        return orjson.loads(self.content)


class Client:
    """One connection to `base` (http://host:port), opened on first use and again when the server
    closed it between two requests."""

    def __init__(self, base: str, timeout: float = 30) -> None:
        url = urlsplit(base)
        self.host, self.port, self.timeout = url.hostname or "127.0.0.1", url.port or 80, timeout
        self.authority = f"{self.host}:{self.port}".encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def get(self, path: str, headers: dict[str, str]) -> Response:
        return await self.request("GET", path, headers, None)

    async def post(self, path: str, json: Any, headers: dict[str, str]) -> Response:
        return await self.request("POST", path, headers, orjson.dumps(json))

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes | None) -> Response:
        head = [f"{method} {path} HTTP/1.1".encode(), b"Host: " + self.authority]
        if body is not None:
            head += [b"Content-Type: application/json", b"Content-Length: %d" % len(body)]
        head += [f"{name}: {value}".encode() for name, value in headers.items()]
        data = b"\r\n".join(head) + b"\r\n\r\n" + (body or b"")
        for attempt in (1, 2):
            fresh = self.writer is None
            try:
                return await asyncio.wait_for(self._exchange(data), self.timeout)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if fresh or attempt == 2:  # a new connection that failed: no point trying again
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, data: bytes) -> Response:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.reader, self.writer
        writer.write(data)
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if status in NO_BODY:
            content = b""
        elif "content-length" in headers:
            content = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            content = await _chunks(reader)
        else:  # the body runs to the end of the connection
            content = await reader.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Response(status, headers, content)


async def _chunks(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        parts.append((await reader.readexactly(size + 2))[:-2])
    while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, then the blank line
        pass
    return b"".join(parts)
