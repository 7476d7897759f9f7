"""The OpenAPI 3.1 document, generated from the endpoint registry and the pydantic schemas.

Every model an endpoint names (body, query, response) goes through one `models_json_schema`
call, so each schema is defined once under its class name; two different models with one name
would get names mangled by pydantic, so the build refuses them (SchemaNameCollision). What no
model says is added here from the registry: path parameters, documented headers (required where
they are), the error responses each operation can give (the body's `code` is an enum of every
code in web/errors.py), 304 where If-None-Match is honoured, and the response headers X-Request-ID
(every response), ETag and Retry-After.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from models.infra.storable import MAX_INT
from web.api import PATH_PARAM, Endpoint, Header
from web.errors import STATUS_BY_CODE
from web.schemas import Error

REF = "#/components/schemas/{model}"
ERROR_REF = {"$ref": REF.format(model="Error")}
# Every operation below /api/v1 may meet these (the database or Redis down; a body over the limit).
ALWAYS = ["service_unavailable"]
WITH_BODY = ["validation_error", "payload_too_large"]
HEADERS = {
    "X-Request-ID": {
        "description": "The request's id (yours if you sent a valid X-Request-ID), also in the logs",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
    },
    "ETag": {
        "description": "The order's version, the same for the order and its /status; send it back to "
        "GET /orders/{id}/status as If-None-Match (compared weakly), with ?wait= to long-poll at once",
        "schema": {"type": "string", "examples": ['"o42v3"']},
    },
    "Retry-After": {"description": "Seconds to wait before trying again", "schema": {"type": "integer", "minimum": 1}},
}
TAGS = [
    {"name": "auth", "description": "Accounts and tokens (itsdangerous-signed; `Authorization: Bearer <token>`)."},
    {"name": "products", "description": "The catalogue. Anonymous reads are cached per process for a moment."},
    {"name": "addresses", "description": "The caller's saved shipping addresses."},
    {"name": "cart", "description": "The cart of a session (`X-Session-ID`), priced at the catalogue's prices."},
    {
        "name": "orders",
        "description": "Checkout: place the order (202, `pending`), poll `/status` until `reserved`, "
        "pay as `payment.next_action` says (202), poll until `confirmed` or `failed`. Both 202s carry "
        "the order's `ETag`: long-poll `/status?wait=N` with it as `If-None-Match` straight away.",
    },
    {"name": "operations", "description": "Health, readiness and Prometheus metrics, at the root."},
]


class SchemaNameCollision(RuntimeError):
    """Two different models share a class name: their schemas would overwrite each other."""


def _components(endpoints: list[tuple[str, Endpoint]]) -> tuple[dict[tuple[Any, str], dict[str, Any]], dict[str, Any]]:
    """({(type, mode): schema or $ref}, component schemas) for every type the endpoints name."""
    models: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(Error, "serialization"): None}
    others: list[tuple[Any, str]] = []
    for _, ep in endpoints:
        for tp, mode in ((ep.body, "validation"), (ep.query, "validation"), (ep.response, "serialization")):
            if tp is None:
                continue
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                models[(tp, mode)] = None  # type: ignore[index]
            else:
                others.append((tp, mode))
    keys, top = models_json_schema(list(models), ref_template=REF)
    schemas: dict[tuple[Any, str], dict[str, Any]] = {key: dict(value) for key, value in keys.items()}
    components = dict(top.get("$defs", {}))
    for tp, mode in others:
        schema = TypeAdapter(tp).json_schema(mode=mode, ref_template=REF)  # type: ignore[arg-type]
        for name, definition in schema.pop("$defs", {}).items():
            if components.setdefault(name, definition) != definition:
                raise SchemaNameCollision(f"two different schemas are named {name!r}")
        schemas[(tp, mode)] = schema
    mangled = sorted(name for name in components if "__" in name)
    if mangled:
        raise SchemaNameCollision("several models share a class name; rename one of them: " + ", ".join(mangled))
    _error_codes(components)
    return schemas, components


def _error_codes(components: dict[str, Any]) -> None:
    """The error body's `code` is one of the codes web/errors.py maps (plus internal_error, 500)."""
    codes = sorted({*STATUS_BY_CODE, "internal_error"})
    body = components["ErrorBody"]["properties"]["code"]
    body.update({"enum": codes, "description": "Stable: switch on it. The status each code comes with is fixed."})


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    return components[ref.rsplit("/", 1)[-1]] if ref else schema


def _header_parameter(name: str, header: str | Header) -> dict[str, Any]:
    spec = header if isinstance(header, Header) else Header(header)
    return {
        "name": name,
        "in": "header",
        "required": spec.required,
        "description": spec.description,
        "schema": dict(spec.schema),
    }


def _parameters(
    ep: Endpoint, schemas: dict[tuple[Any, str], dict[str, Any]], components: dict[str, Any]
) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for name, convertor in PATH_PARAM.findall(ep.path):
        # web/api.py answers 404 for an id past 64 bits and 422 for text PostgreSQL cannot store.
        schema = {"type": "integer", "minimum": 0, "maximum": MAX_INT} if convertor == "int" else {"type": "string"}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    params += [_header_parameter(name, header) for name, header in ep.headers.items()]
    if ep.query is not None:
        query = _resolve(schemas[(ep.query, "validation")], components)
        required = set(query.get("required", []))
        for name, prop in query.get("properties", {}).items():
            param = {"name": name, "in": "query", "required": name in required, "schema": prop}
            if "description" in prop:
                param["description"] = prop["description"]
            params.append(param)
    return params


def _with_headers(response: dict[str, Any], *names: str) -> dict[str, Any]:
    response["headers"] = {name: {"$ref": f"#/components/headers/{name}"} for name in ("X-Request-ID", *names)}
    return response


def _responses(ep: Endpoint, schemas: dict[tuple[Any, str], dict[str, Any]], api: bool) -> dict[str, Any]:
    etag = "If-None-Match" in ep.headers
    ok = _with_headers(
        {"description": "Success" if ep.status != 202 else "Accepted: the pipeline takes it on"},
        *(["ETag"] if etag or ep.etag else []),
    )
    if ep.response is not None and ep.status != 204:
        ok["content"] = {"application/json": {"schema": schemas[(ep.response, "serialization")]}}
    responses: dict[str, Any] = {str(ep.status): ok}
    if etag:
        responses["304"] = _with_headers(
            {"description": "Not modified: the ETag you sent is still current (no body)"}, "ETag"
        )
    codes = list(ep.errors)
    if ep.auth in {"user", "admin", "token", "optional"}:  # optional: a token sent must be valid
        codes += ["not_authenticated", "token_expired"]
    if ep.auth == "admin":
        codes.append("forbidden")
    path_kinds = {convertor for _name, convertor in PATH_PARAM.findall(ep.path)}
    if ep.body is not None:
        codes += WITH_BODY
    if ep.query is not None or path_kinds - {"int"}:
        codes.append("validation_error")
    if "int" in path_kinds and not any(code.endswith("_not_found") for code in codes):
        codes.append("not_found")
    if api:
        codes += ALWAYS
    by_status: dict[int, list[str]] = {}
    for code in dict.fromkeys(codes):
        by_status.setdefault(STATUS_BY_CODE.get(code, 400), []).append(code)
    for status, names in sorted(by_status.items()):
        extra = ["Retry-After"] if status in (429, 503) else []
        responses[str(status)] = _with_headers(
            {"description": "Error codes: " + ", ".join(names), "content": {"application/json": {"schema": ERROR_REF}}},
            *extra,
        )
    return responses


def build(endpoints: list[tuple[str, Endpoint]], title: str, version: str) -> dict[str, Any]:
    schemas, components = _components(endpoints)
    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    for prefix, ep in endpoints:
        operation_id = f"{ep.tags[0]}_{ep.handler.__name__}"
        if operation_id in operation_ids:
            raise ValueError(f"two operations would have the id {operation_id!r}")
        operation_ids.add(operation_id)
        op: dict[str, Any] = {"summary": ep.summary, "tags": ep.tags, "operationId": operation_id}
        params = _parameters(ep, schemas, components)
        if params:
            op["parameters"] = params
        if ep.body is not None:
            schema = schemas[(ep.body, "validation")]
            if ep.method == "PATCH":  # a PATCH that changes nothing is refused (web/api.py)
                schema = {"allOf": [schema], "minProperties": 1}
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
        if ep.auth in {"user", "admin", "token"}:
            op["security"] = [{"bearer": []}]
        elif ep.auth == "optional":
            op["security"] = [{"bearer": []}, {}]
        op["responses"] = _responses(ep, schemas, api=bool(prefix))
        paths.setdefault(prefix + ep.openapi_path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Checkout backend for a fashion/lifestyle shop. Every error has the body "
            "`{error: {code, message, details}}` and a status fixed by its code; money is an "
            "integer in the currency's minor unit, with `currency` beside it. Every response "
            "carries `X-Request-ID`.",
        },
        "servers": [{"url": "/", "description": "This server (paths include /api/v1)"}],
        "tags": TAGS,
        "paths": paths,
        "components": {
            "schemas": components,
            "headers": HEADERS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "itsdangerous-signed access token"}
            },
        },
    }
