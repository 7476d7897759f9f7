"""Declaring endpoints: one decorator validates input, authenticates, and records OpenAPI metadata.

A handler receives the request plus the parsed `body`, `query` and `user` it asked for, and
returns a dict (rendered as JSON with the declared status) or a Response.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from models.errors import AuthError, DomainError, NotFound, validation_error
from models.infra.db import db
from models.infra.storable import MAX_INT, refuse_unstorable
from web.responses import json_response

Handler = Callable[..., Awaitable[Any]]
PATH_PARAM = re.compile(r"{(\w+)(?::(\w+))?}")


@dataclass(frozen=True)
class Header:
    """A request header an endpoint reads, as the OpenAPI document describes it."""

    description: str
    required: bool = False
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tags: list[str]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    errors: list[str] = field(default_factory=list)
    auth: str = "none"  # none | optional | user | admin | token (required; the handler verifies it)
    headers: dict[str, str | Header] = field(default_factory=dict)  # documented request headers
    # Answers a request from a cache before authentication and parsing, or None to serve it.
    cached: Callable[[Request], Response | None] | None = None
    etag: bool = False  # the success response carries the order's ETag (documented in OpenAPI)
    params: frozenset[str] = field(init=False)  # the handler's parameter names, read once

    def __post_init__(self) -> None:
        self.params = frozenset(inspect.signature(self.handler).parameters)

    @property
    def openapi_path(self) -> str:
        return PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", self.path)


def fields_from(err: ValidationError, prefix: str = "") -> dict[str, str]:
    """Pydantic errors as {dotted.field: message}, the contract's details.fields."""
    out: dict[str, str] = {}
    for item in err.errors():
        loc = ".".join(str(part) for part in item["loc"] if part != "__root__") or prefix.rstrip(".") or "body"
        msg = item["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        out[prefix + loc if prefix and not loc.startswith(prefix) else loc] = msg
    return out


async def parse_body(request: Request, model: type[BaseModel]) -> BaseModel:
    raw = await request.body()
    if not raw.strip():
        data: Any = {}
    else:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise validation_error({"body": f"Malformed JSON: {exc}"}, "The request body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise validation_error({"body": "Expected a JSON object."})
    refuse_unstorable(data)
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(fields_from(exc)) from exc
    if request.method == "PATCH" and not parsed.model_fields_set:
        raise validation_error({"body": "Send at least one field to change."}, "Nothing to change.")
    return parsed


def _query_names(model: type[BaseModel]) -> frozenset[str]:
    """The parameter names a query model accepts: its fields' aliases (`from`) or names."""
    return frozenset(field.alias or name for name, field in model.model_fields.items())


_DEFAULTS: dict[type[BaseModel], BaseModel | ValidationError] = {}


def _defaults(model: type[BaseModel]) -> BaseModel:
    """The model of an empty query string, validated once per model (handlers never change it)."""
    known = _DEFAULTS.get(model)
    if known is None:
        try:
            known = model.model_validate({})
        except ValidationError as exc:
            known = exc
        _DEFAULTS[model] = known
    if isinstance(known, ValidationError):
        raise validation_error(fields_from(known))
    return known


def parse_query(request: Request, model: type[BaseModel]) -> BaseModel:
    """The query string as model. On GET (and HEAD) parameters the model does not know are ignored:
    cache busters (`_=1712`) and tracking tags (`utm_*`) ride along on storefront reads. Elsewhere
    they are refused, as unknown body fields are."""
    if not request.scope["query_string"]:
        return _defaults(model)  # the polling path: nothing to parse
    tolerant = request.method in {"GET", "HEAD"}
    unknown = {}
    data: dict[str, Any] = {}
    known = _query_names(model)
    for key in request.query_params.keys():
        if key not in known:
            if not tolerant:
                unknown[key] = "Unknown query parameter."
            continue
        values = request.query_params.getlist(key)
        data[key] = values[-1] if len(values) == 1 else values
    refuse_unstorable(data)
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        raise validation_error({**fields_from(exc), **unknown}) from exc
    if unknown:
        raise validation_error(unknown)
    return parsed


def _check_path(ep: Endpoint, path_params: dict[str, Any]) -> None:
    """Text PostgreSQL cannot store is a 422. An id past 64 bits names no row any column could hold:
    404 with the endpoint's own not-found code, like any other absent id. An endpoint with no
    not-found answer (removing a cart line, a no-op when absent) gets the id as it is: its handler
    answers as for any other absent id, and never sends it to PostgreSQL."""
    stored = path_params
    for name, value in path_params.items():
        if isinstance(value, int) and value > MAX_INT:
            code = next((c for c in ep.errors if c.endswith("_not_found")), None)
            if code is None:
                stored = {k: v for k, v in stored.items() if k != name}
                continue
            thing = code.removesuffix("not_found").rstrip("_").replace("_", " ")
            raise NotFound(code, f"No such {thing}.", **{name: str(value)})
    refuse_unstorable(stored)


class Registry:
    """Every endpoint the API serves, in declaration order; routes and OpenAPI come from here."""

    def __init__(self) -> None:
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tags: list[str],
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: Any = None,
        status: int = 200,
        errors: list[str] | None = None,
        auth: str = "none",
        headers: dict[str, str | Header] | None = None,
        cached: Callable[[Request], Response | None] | None = None,
        etag: bool = False,
    ) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method,
                    path,
                    handler,
                    summary,
                    tags,
                    body,
                    query,
                    response,
                    status,
                    list(errors or []),
                    auth,
                    dict(headers or {}),
                    cached,
                    etag,
                )
            )
            return handler

        return decorate

    def routes(self, prefix: str) -> list[Route]:
        grouped: dict[str, list[Endpoint]] = {}
        for ep in self.endpoints:
            grouped.setdefault(ep.path, []).append(ep)
        return [
            Route(prefix + path, _dispatcher({ep.method: ep for ep in eps}), methods=[ep.method for ep in eps])
            for path, eps in grouped.items()
        ]


def raw_header(request: Request, name: bytes) -> str | None:
    """A request header by its lower-case name, read from the scope: what request.headers.get(name)
    answers, without building the Headers mapping (a few microseconds a request)."""
    for key, value in request.scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _dispatcher(by_method: dict[str, Endpoint]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await call(by_method[method], request)

    return endpoint


async def call(ep: Endpoint, request: Request) -> Response:
    if ep.cached is not None:
        hit = ep.cached(request)
        if hit is not None:
            return hit
    kwargs: dict[str, Any] = {}
    params = ep.params
    if ep.auth == "optional" and raw_header(request, b"authorization") is None:
        if "user" in params:  # an anonymous caller: what current_user answers without a token
            kwargs["user"] = None
    elif ep.auth in {"user", "admin", "optional"}:  # "token": the handler checks the token itself
        from web.auth import current_user  # late import: auth depends on this module's helpers

        user = await current_user(request, required=ep.auth != "optional")
        if ep.auth == "admin" and not (user and user.is_admin):
            raise AuthError("forbidden", "This endpoint is for administrators.")
        if "user" in params:
            kwargs["user"] = user
    if ep.query is not None:
        kwargs["query"] = parse_query(request, ep.query)
    if ep.body is not None:
        kwargs["body"] = await parse_body(request, ep.body)
    path_params = request.path_params
    if path_params:
        _check_path(ep, path_params)
    for name, value in path_params.items():
        if name in params:
            kwargs[name] = value
    result = await ep.handler(request, **kwargs)
    if isinstance(result, Response):
        return result
    if result is None:
        return Response(status_code=204 if ep.status == 200 else ep.status)
    return json_response(result, ep.status)


def _with_connection(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    # Borrow a pooled connection for this call only: threadpool threads must not each keep one.
    with db.obj.connection_context():
        return fn(*args, **kwargs)


async def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a blocking domain function (Peewee, redis-py) off the event loop on a pooled connection."""
    return await run_in_threadpool(_with_connection, fn, *args, **kwargs)


__all__ = ["Registry", "Endpoint", "Header", "run", "DomainError"]
