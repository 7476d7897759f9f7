"""Validators and columns cannot drift apart: every input model of every registered endpoint (bodies
and queries, nested models included) bounds every string, list and number it accepts, and where a
field is stored in a column, its bound fits the column (length for varchar, range for integers,
sign for columns with a CHECK). A model this file does not know fails until it is mapped below, so
a new endpoint's input is compared with its table when it is added."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import peewee
import pytest
from pydantic import BaseModel

from models.tables import Address, Discount, Order, OrderItem, Product, Review, StockEntry, User
from web.app import REGISTRIES

INT4, INT8 = 2**31 - 1, 2**63 - 1

# model -> the table its fields are stored in (fields match columns of the same name).
TARGETS: dict[str, type[peewee.Model]] = {
    "RegisterIn": User,
    "LoginIn": User,
    "ProfilePatch": User,
    "AddressFields": Address,
    "AddressIn": Address,
    "AddressPatch": Address,
    "CheckoutIn": Order,
    "PayIn": Order,
    "AdminUpdateIn": Order,
    # The pay body as documented: one schema per gateway (PayIn parses them all).
    "DummyPayIn": Order,
    "TossPayIn": Order,
    "StripePayIn": Order,
    "ProductIn": Product,
    "ProductPatch": Product,
    "ProductQuery": Product,
    "CartItemIn": OrderItem,
    "CartQuantityIn": OrderItem,
    "GuestIn": Order,
    "AdminOrderQuery": Order,
    "DiscountIn": Discount,
    "DiscountPatch": Discount,
    "ReviewIn": Review,
    "ReviewHiddenIn": Review,
    "StockChangeIn": StockEntry,
}
# Input models none of whose fields is stored (tokens, paging, long-poll time).
NO_TABLE = {
    "RefreshIn",
    "OrderListQuery",
    "StatusQuery",
    "FlaggedQuery",
    "ShipmentQuery",
    "QuoteIn",
    "LookupIn",
    "DiscountQuery",
    "LedgerQuery",
    "ReviewQuery",
    "DashboardQuery",
}
# Fields stored under another name.
COLUMN_OF: dict[tuple[str, str], peewee.Field] = {
    ("PayIn", "payment_intent_id"): Order.payment_transaction_id,
    ("PayIn", "payment_key"): Order.payment_transaction_id,
    ("PayIn", "amount"): Order.total,
    ("TossPayIn", "payment_key"): Order.payment_transaction_id,
    ("TossPayIn", "amount"): Order.total,
    ("StripePayIn", "payment_intent_id"): Order.payment_transaction_id,
    ("ProductQuery", "min_price"): Product.price,
    ("ProductQuery", "max_price"): Product.price,
    ("GuestIn", "email"): Order.guest_email,
    ("GuestIn", "phone"): Order.guest_phone,
    ("GuestIn", "full_name"): Order.guest_name,
    ("StockChangeIn", "set"): Product.stock_quantity,
}
# Fields that reach no column although their model's table has one of the same name, or that are
# references to rows (looked up, 404 when absent) rather than stored values.
NOT_STORED = {
    ("LoginIn", "email"),
    ("CheckoutIn", "address_id"),
    ("CartItemIn", "product_id"),
    ("ProductQuery", "category"),
    ("AdminOrderQuery", "q"),
    ("StockChangeIn", "order_id"),
    ("CartQuantityIn", "quantity"),
}  # 0 removes the line: a positive quantity is what is stored


def input_models() -> Iterator[tuple[str, type[BaseModel]]]:
    seen: set[type[BaseModel]] = set()
    for _prefix, registry in REGISTRIES:
        for ep in registry.endpoints:
            for model in (ep.body, ep.query):
                if model is not None and model not in seen:
                    seen.add(model)
                    yield f"{ep.method} {ep.path}", model


def schemas() -> dict[str, dict[str, Any]]:
    """Every input model's JSON schema by name, nested models included."""
    out: dict[str, dict[str, Any]] = {}
    for _where, model in input_models():
        schema = model.model_json_schema()
        for name, nested in schema.pop("$defs", {}).items():
            out[name] = nested
        out[model.__name__] = schema
    return out


def branches(prop: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-null alternatives of a property (Optional[X] is anyOf [X, null])."""
    options = prop.get("anyOf", [prop])
    return [option for option in options if option.get("type") != "null"]


def fields() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for model, schema in schemas().items():
        for field, prop in schema.get("properties", {}).items():
            for branch in branches(prop):
                yield model, field, branch


def unbounded(branch: dict[str, Any]) -> list[str]:
    kind = branch.get("type")
    if "$ref" in branch or "enum" in branch or "const" in branch:
        return []
    if kind == "string":
        return [] if "maxLength" in branch else ["maxLength"]
    if kind in ("integer", "number"):
        return [bound for bound in ("minimum", "maximum") if bound not in branch]
    if kind == "array":
        return ([] if "maxItems" in branch else ["maxItems"]) + unbounded(branch.get("items", {}))
    if kind == "boolean":
        return []
    return [f"a type this test does not know ({kind or branch})"]


def test_every_input_model_is_mapped_to_its_table_or_declared_tableless() -> None:
    unknown = sorted(set(schemas()) - set(TARGETS) - NO_TABLE)
    assert unknown == [], f"map each to the table its fields are stored in (TARGETS) or add it to NO_TABLE: {unknown}"


def test_every_string_list_and_number_is_bounded() -> None:
    missing = [f"{model}.{field}: {problem}" for model, field, branch in fields() for problem in unbounded(branch)]
    assert missing == []


def column_for(model: str, field: str) -> peewee.Field | None:
    if (model, field) in NOT_STORED:
        return None
    if (model, field) in COLUMN_OF:
        return COLUMN_OF[(model, field)]
    table = TARGETS.get(model)
    return table._meta.fields.get(field) if table is not None else None


def stored() -> list[tuple[str, str, dict[str, Any], peewee.Field]]:
    return [
        (model, field, branch, column)
        for model, field, branch in fields()
        if (column := column_for(model, field)) is not None
    ]


def test_the_mapping_reaches_the_columns_it_should() -> None:
    # A guard on the test itself: renaming a column or a field must not silently end the comparison.
    names = {(model, field) for model, field, _branch, _column in stored()}
    assert {
        ("RegisterIn", "phone"),
        ("AddressFields", "phone"),
        ("AddressPatch", "postal_code"),
        ("CheckoutIn", "discount_code"),
        ("AdminUpdateIn", "tracking_number"),
        ("ProductIn", "sku"),
        ("ProductPatch", "stock_quantity"),
        ("TossPayIn", "amount"),
        ("CartItemIn", "quantity"),
    } <= names


@pytest.mark.parametrize("kind", ["text", "integer"])
def test_bounds_fit_the_columns(kind: str) -> None:
    wrong = []
    for model, field, branch, column in stored():
        where = f"{model}.{field} -> {column.model._meta.table_name}.{column.column_name}"
        if kind == "text" and isinstance(column, peewee.CharField):
            longest = (
                max((len(str(v)) for v in branch["enum"]), default=0) if "enum" in branch else branch.get("maxLength")
            )
            if longest is None or longest > column.max_length:
                wrong.append(f"{where}: {longest} > varchar({column.max_length})")
        if kind == "integer" and isinstance(column, peewee.IntegerField):
            top = INT8 if isinstance(column, peewee.BigIntegerField) else INT4
            if branch.get("maximum", top + 1) > top or branch.get("minimum", -top - 2) < -top - 1:
                wrong.append(f"{where}: [{branch.get('minimum')}, {branch.get('maximum')}] outside the column's range")
            for check in column.constraints or []:
                bound = re.search(r"(?<!<)>\s*(=?)\s*(-?\d+)", getattr(check, "sql", ""))  # not "<>"
                if bound and branch.get("minimum", -top) < int(bound.group(2)) + (0 if bound.group(1) else 1):
                    wrong.append(f"{where}: minimum {branch.get('minimum')} breaks CHECK {bound.group(0)}")
    assert wrong == []
