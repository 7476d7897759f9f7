"""The OpenAPI 3.1 document, generated from the endpoint registry and the pydantic schemas."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from models.infra.storable import MAX_INT
from web.api import PATH_PARAM, Endpoint
from web.errors import STATUS_BY_CODE
from web.schemas import Error

REF = "#/components/schemas/{model}"


def _schema_of(tp: Any, components: dict[str, Any]) -> dict[str, Any]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        _, defs = models_json_schema([(tp, "validation")], ref_template=REF)
        components.update(defs.get("$defs", {}))
        return {"$ref": REF.format(model=tp.__name__)}
    schema = TypeAdapter(tp).json_schema(ref_template=REF)
    components.update(schema.pop("$defs", {}))
    return schema


def _query_params(model: type[BaseModel], components: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    components.update(schema.pop("$defs", {}))
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop,
         **({"description": prop["description"]} if "description" in prop else {})}
        for name, prop in schema.get("properties", {}).items()
    ]


def build(endpoints: list[tuple[str, Endpoint]], title: str, version: str) -> dict[str, Any]:
    components: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    error_ref = _schema_of(Error, components)
    for prefix, ep in endpoints:
        operation_id = ep.handler.__module__.rsplit(".", 1)[-1] + "_" + ep.handler.__name__
        op: dict[str, Any] = {"summary": ep.summary, "tags": ep.tags, "operationId": operation_id}
        params: list[dict[str, Any]] = []
        for name, convertor in PATH_PARAM.findall(ep.path):
            # web/api.py answers 404 for an id past 64 bits and 422 for text PostgreSQL cannot store.
            kind = {"type": "integer", "minimum": 0, "maximum": MAX_INT} if convertor == "int" else {"type": "string"}
            params.append({"name": name, "in": "path", "required": True, "schema": kind})
        for header, description in ep.headers.items():
            params.append({"name": header, "in": "header", "required": False, "schema": {"type": "string"},
                           "description": description})
        if ep.query is not None:
            params += _query_params(ep.query, components)
        if params:
            op["parameters"] = params
        if ep.body is not None:
            schema = _schema_of(ep.body, components)
            if ep.method == "PATCH":  # a PATCH that changes nothing is refused (web/api.py)
                schema = {"allOf": [schema], "minProperties": 1}
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
        responses: dict[str, Any] = {}
        ok: dict[str, Any] = {"description": "Success"}
        if ep.response is not None and ep.status != 204:
            ok["content"] = {"application/json": {"schema": _schema_of(ep.response, components)}}
        responses[str(ep.status)] = ok
        codes = list(ep.errors)
        if ep.auth in {"user", "admin", "token"}:
            codes += ["not_authenticated", "token_expired"]
            op["security"] = [{"bearer": []}]
        if ep.auth == "admin":
            codes.append("forbidden")
        path_kinds = {convertor for _name, convertor in PATH_PARAM.findall(ep.path)}
        if ep.body is not None or ep.query is not None or path_kinds - {"int"}:
            codes.append("validation_error")
        if "int" in path_kinds and not any(code.endswith("_not_found") for code in codes):
            codes.append("not_found")
        by_status: dict[int, list[str]] = {}
        for code in dict.fromkeys(codes):
            by_status.setdefault(STATUS_BY_CODE.get(code, 400), []).append(code)
        for status, names in sorted(by_status.items()):
            responses[str(status)] = {"description": "Error codes: " + ", ".join(names),
                                      "content": {"application/json": {"schema": error_ref}}}
        op["responses"] = responses
        paths.setdefault(prefix + ep.openapi_path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version,
                 "description": "Checkout backend for a fashion/lifestyle shop. Every error has the body "
                                "{error: {code, message, details}}; money is an integer in the currency's minor unit."},
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "itsdangerous-signed access token"}}},
    }

