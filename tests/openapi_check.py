"""Checks real responses against the OpenAPI document: the status must be one the operation
documents, and a JSON body must match the documented schema. tests/conftest.py runs every
response of the `client` fixture through this, so the whole suite keeps the document true."""

from __future__ import annotations

import re
from typing import Any

from openapi_schema_validator import OAS31Validator

# Answered by the router before any operation is chosen (a path parameter that is not an int, a
# method the path does not have): not part of an operation's documented responses.
ROUTER_STATUSES = {404, 405}


_OPERATIONS: dict[int, list[tuple[re.Pattern[str], str, dict[str, Any]]]] = {}
_VALIDATORS: dict[tuple[int, int], Any] = {}


def _operations(spec: dict[str, Any]) -> list[tuple[re.Pattern[str], str, dict[str, Any]]]:
    """(path regex, METHOD, operation) for each documented operation, read once per document."""
    if id(spec) not in _OPERATIONS:
        _OPERATIONS[id(spec)] = [
            (re.compile("^" + re.sub(r"\\{\w+\\}", "[^/]+", re.escape(path)) + "$"), method.upper(), op)
            for path, item in spec["paths"].items()
            for method, op in item.items()
        ]
    return _OPERATIONS[id(spec)]


def problems(spec: dict[str, Any], method: str, path: str, status: int, content_type: str, body: Any) -> list[str]:
    """What is wrong with this response according to the document ([] when it agrees)."""
    method = "GET" if method == "HEAD" else method
    matches = [op for pattern, m, op in _operations(spec) if m == method and pattern.match(path)]
    if not matches:
        return []  # an undocumented route (the docs pages, a 404 for an unknown path)
    op = matches[0]
    documented = op["responses"].get(str(status))
    if documented is None:
        if status in ROUTER_STATUSES:
            return []
        return [f"{method} {path}: status {status} is not documented ({', '.join(op['responses'])})"]
    schema = documented.get("content", {}).get("application/json", {}).get("schema")
    if schema is None or not content_type.startswith("application/json"):
        return []
    key = (id(spec), id(schema))
    validator = _VALIDATORS.get(key)
    if validator is None:
        validator = _VALIDATORS[key] = OAS31Validator({**schema, "components": spec["components"]})
    return [f"{method} {path} {status}: {error.json_path}: {error.message}" for error in validator.iter_errors(body)][
        :5
    ]
