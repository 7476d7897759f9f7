"""JSON responses rendered with orjson (datetimes as ISO-8601 with offset)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse as _StarletteJSON
from starlette.responses import Response

_JSON_TYPE = (b"content-type", b"application/json")


class JSONResponse(_StarletteJSON):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


class RawJSON(Response):
    """A body that is JSON already (a cached page), or a value rendered here, with no other headers:
    the same response as Response(body, media_type="application/json"), made without
    Response.init_headers' checks (a third of the cost of answering from the catalogue cache)."""

    media_type = "application/json"

    def __init__(self, body: bytes, status_code: int = 200) -> None:
        self.status_code = status_code
        self.body = body
        self.background = None
        self.raw_headers = [(b"content-length", b"%d" % len(body)), _JSON_TYPE]


def json_response(content: Any, status_code: int = 200) -> Response:
    """content rendered as JSONResponse renders it, as a RawJSON."""
    return RawJSON(orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS), status_code)
