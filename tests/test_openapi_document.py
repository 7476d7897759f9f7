"""The OpenAPI document tells a client generator the truth: it is a valid OpenAPI 3.1 document
(openapi-spec-validator), statuses and error codes are enums, the payment's next action and the pay
body are one schema per gateway, the polling endpoint's 304 and every documented header are
there, headers say when they are required, the checkout has examples, and a schema name used by
two models stops the build. (Every response the suite receives is checked against the document
by the `client` fixture: tests/openapi_check.py.)"""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel

from models.orders.states import STATUSES, PaymentStatus
from web.errors import STATUS_BY_CODE
from web.orders.schemas import DummyPayIn, PayIn, StripePayIn, TossPayIn


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    from web.app import app

    return dict(app.state.openapi)


def schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(spec["components"]["schemas"][name])


def test_the_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    validate(spec)
    assert spec["openapi"].startswith("3.1") and spec["servers"]


def test_statuses_and_error_codes_are_enums(spec: dict[str, Any]) -> None:
    status = schema(spec, "OrderStatusOut")["properties"]
    assert status["status"]["enum"] == list(STATUSES)
    assert status["payment_status"]["enum"] == [s.value for s in PaymentStatus]
    assert schema(spec, "OrderSummaryOut")["properties"]["status"]["enum"] == list(STATUSES)
    codes = schema(spec, "ErrorBody")["properties"]["code"]["enum"]
    assert set(STATUS_BY_CODE) | {"internal_error"} == set(codes)


def test_next_action_and_pay_body_are_one_schema_per_gateway(spec: dict[str, Any]) -> None:
    next_action = schema(spec, "PaymentOut")["properties"]["next_action"]
    union = next(branch for branch in next_action["anyOf"] if "oneOf" in branch)
    assert union["discriminator"]["propertyName"] == "type"
    assert set(union["discriminator"]["mapping"]) == {"token", "toss_widget", "stripe_confirm"}
    pay = spec["paths"]["/api/v1/orders/{order_id}/pay"]["post"]["requestBody"]["content"]["application/json"]
    body = schema(spec, pay["schema"]["$ref"].rsplit("/", 1)[-1])
    assert [ref["$ref"].rsplit("/", 1)[-1] for ref in body["oneOf"]] == ["DummyPayIn", "TossPayIn", "StripePayIn"]
    for name in ("DummyPayIn", "TossPayIn", "StripePayIn"):
        assert schema(spec, name)["additionalProperties"] is False  # so exactly one branch matches


@pytest.mark.parametrize("model", [DummyPayIn, TossPayIn, StripePayIn])
def test_each_documented_pay_body_is_accepted_by_the_endpoint(model: type[BaseModel]) -> None:
    for example in model.model_config["json_schema_extra"]["examples"]:  # type: ignore[index]
        model.model_validate(example)
        assert PayIn.model_validate(example).model_dump(exclude_none=True) == example


def test_polling_documents_304_and_the_headers(spec: dict[str, Any]) -> None:
    status = spec["paths"]["/api/v1/orders/{order_id}/status"]["get"]
    assert set(status["responses"]["200"]["headers"]) == {"X-Request-ID", "ETag"}
    assert "ETag" in status["responses"]["304"]["headers"] and "content" not in status["responses"]["304"]
    assert "If-None-Match" in [p["name"] for p in status["parameters"]]
    for path, item in spec["paths"].items():
        for method, op in item.items():
            for code, response in op["responses"].items():
                assert "X-Request-ID" in response["headers"], (method, path, code)
                if code in ("429", "503"):
                    assert "Retry-After" in response["headers"], (method, path, code)
    register = spec["paths"]["/api/v1/auth/register"]["post"]["responses"]
    assert "429" in register and "503" in register


def test_headers_are_described_with_their_rules(spec: dict[str, Any]) -> None:
    checkout = {p["name"]: p for p in spec["paths"]["/api/v1/orders"]["post"]["parameters"]}
    # X-Session-ID is required only without an access token (OpenAPI cannot say "either"): the
    # description says so, the schema carries the rule it is checked against.
    assert checkout["X-Session-ID"]["schema"]["pattern"] == "^[A-Za-z0-9_-]{8,128}$"
    assert "required without an access token" in checkout["X-Session-ID"]["description"]
    assert checkout["Idempotency-Key"]["required"] is False
    assert checkout["Idempotency-Key"]["schema"]["maxLength"] == 255
    for method, op in spec["paths"]["/api/v1/cart"].items():
        session = next(p for p in op["parameters"] if p["name"] == "X-Session-ID")
        assert "required without an access token" in session["description"], method
        assert session["schema"]["pattern"] == "^[A-Za-z0-9_-]{8,128}$", method
    for path, item in spec["paths"].items():  # a header marked required is one no request may omit
        for method, op in item.items():
            for param in op.get("parameters", []):
                if param["in"] == "header" and param["required"]:
                    assert param["name"] not in {"X-Session-ID", "Idempotency-Key"}, (method, path)


def test_the_checkout_has_examples(spec: dict[str, Any]) -> None:
    for name in ("CheckoutIn", "DummyPayIn", "TossPayIn", "StripePayIn", "OrderStatusOut"):
        assert schema(spec, name)["examples"], name


def test_two_models_with_one_name_stop_the_build() -> None:
    from web import openapi
    from web.api import Registry

    def model(field_type: type) -> type[BaseModel]:
        class Thing(BaseModel):
            value: field_type  # type: ignore[valid-type]

        return Thing

    registry = Registry()

    @registry.route("POST", "/a", summary="a", tags=["t"], body=model(int))
    async def first(request: Any) -> None: ...

    @registry.route("POST", "/b", summary="b", tags=["t"], body=model(str))
    async def second(request: Any) -> None: ...

    with pytest.raises(openapi.SchemaNameCollision, match="Thing"):
        openapi.build([("/api/v1", ep) for ep in registry.endpoints], "t", "1")
