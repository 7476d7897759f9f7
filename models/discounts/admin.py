"""Staff's discount codes (/admin/discounts): list, read, create, change, delete.

used_count is the pipeline's (claimed at reservation, released on failure): staff never write it,
and a usage_limit below it is refused. Changes lock the row, so they never race a claim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from peewee import IntegrityError

from models.discounts.rules import normalise
from models.errors import Conflict, NotFound, validation_error
from models.infra.db import db
from models.tables import Discount, utcnow

MAX_ID = 2**31 - 1
EDITABLE = (
    "code",
    "kind",
    "value",
    "min_subtotal",
    "starts_at",
    "ends_at",
    "usage_limit",
    "per_customer_limit",
    "active",
)


@dataclass(frozen=True)
class DiscountPage:
    items: list[Discount]
    page: int
    page_size: int
    total: int

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.page_size) if self.total else 0


def _not_found(discount_id: int) -> NotFound:
    return NotFound("discount_not_found", "No such discount.", discount_id=discount_id)


def _check(row: dict[str, Any]) -> None:
    """The rules that involve several fields (the database's CHECKs say the same, as a backstop)."""
    fields: dict[str, str] = {}
    if row["kind"] == "percent" and row["value"] > 100:
        fields["value"] = "A percentage is at most 100."
    if row.get("starts_at") and row.get("ends_at") and row["starts_at"] >= row["ends_at"]:
        fields["ends_at"] = "Must be after starts_at."
    if row.get("usage_limit") is not None and row["usage_limit"] < row.get("used_count", 0):
        fields["usage_limit"] = f"Already used {row['used_count']} times: the limit cannot be lower."
    if fields:
        raise validation_error(fields)


def _saved(action: Any) -> Discount:
    try:
        with db.atomic():
            return action()  # type: ignore[no-any-return]
    except IntegrityError as exc:
        if "discounts_code" in str(exc):
            raise Conflict("discount_code_taken", "Another discount has this code.", field="code") from exc
        raise validation_error({"body": "The discount breaks a rule: " + str(exc).splitlines()[0]}) from exc


def list_discounts(page: int, page_size: int, active: bool | None = None, q: str | None = None) -> DiscountPage:
    """Discounts newest first, optionally only active/inactive ones or codes containing q."""
    query = Discount.select()
    if active is not None:
        query = query.where(Discount.active == active)
    if q:
        query = query.where(Discount.code.contains(normalise(q)))
    total = query.count()
    rows = list(query.order_by(Discount.id.desc()).paginate(page, page_size))
    return DiscountPage(rows, page, page_size, total)


def get_discount(discount_id: int) -> Discount:
    """Raises NotFound discount_not_found."""
    row = Discount.get_or_none(Discount.id == discount_id) if 0 < discount_id <= MAX_ID else None
    if row is None:
        raise _not_found(discount_id)
    return row


def create_discount(data: dict[str, Any]) -> Discount:
    """Raises Conflict discount_code_taken, InvalidInput validation_error."""
    row = {name: data[name] for name in EDITABLE if name in data}
    row["code"] = normalise(row["code"])
    _check(row)
    now = utcnow()
    created = _saved(lambda: Discount.create(**row, used_count=0, created_at=now, updated_at=now))
    return Discount.get_by_id(created.id)  # as stored (times in UTC), as every other read shows it


def update_discount(discount_id: int, changes: dict[str, Any]) -> Discount:
    """Apply the given fields. Raises NotFound discount_not_found, Conflict discount_code_taken,
    InvalidInput validation_error."""
    changes = {name: value for name, value in changes.items() if name in EDITABLE}
    if "code" in changes:
        changes["code"] = normalise(changes["code"])

    def apply() -> Discount:
        current = Discount.select().where(Discount.id == discount_id).for_update().first()
        if current is None:
            raise _not_found(discount_id)
        _check({**current.__data__, **changes})
        if changes:
            Discount.update(**changes, updated_at=utcnow()).where(Discount.id == discount_id).execute()
        return Discount.get_by_id(discount_id)

    if not 0 < discount_id <= MAX_ID:
        raise _not_found(discount_id)
    return _saved(apply)


def delete_discount(discount_id: int) -> None:
    """Delete a discount; orders priced with it keep their code and amount. Raises NotFound."""
    deleted = Discount.delete().where(Discount.id == discount_id).execute() if 0 < discount_id <= MAX_ID else 0
    if not deleted:
        raise _not_found(discount_id)
