"""A user's shipping addresses. At most one is the default: setting a new default clears the old one in
the same transaction, and the partial unique index addresses_one_default_per_user backs that up."""

from __future__ import annotations

from typing import Any

from models.errors import NotFound
from models.infra.db import db
from models.tables import Address, User, utcnow

MAX_ID = 2**31 - 1


def list_addresses(user_id: int) -> list[Address]:
    """The user's addresses, the default first, then oldest first."""
    return list(Address.select().where(Address.user == user_id).order_by(Address.is_default.desc(), Address.id))


def _lock_user(user_id: int) -> None:
    # One writer per user at a time, so two "make this the default" requests cannot both insert one.
    User.select(User.id).where(User.id == user_id).for_update().execute()


def _clear_default(user_id: int, keep: int | None = None) -> None:
    query = Address.update(is_default=False, updated_at=utcnow()).where(
        (Address.user == user_id) & (Address.is_default == True)  # noqa: E712 (a SQL expression)
    )  # noqa: E712
    if keep is not None:
        query = query.where(Address.id != keep)
    query.execute()


def get_address(user_id: int, address_id: int) -> Address:
    """One of the user's addresses; raises NotFound address_not_found (also for another user's)."""
    address = None
    if 0 < address_id <= MAX_ID:
        address = Address.get_or_none((Address.id == address_id) & (Address.user == user_id))
    if address is None:
        raise NotFound("address_not_found", "No such address.")
    return address


def create_address(user_id: int, data: dict[str, Any]) -> Address:
    """Add an address; the user's first address becomes the default unless is_default is false."""
    with db.atomic():
        _lock_user(user_id)
        fields = dict(data)
        if fields.get("is_default") is None:
            fields["is_default"] = not Address.select().where(Address.user == user_id).exists()
        if fields["is_default"]:
            _clear_default(user_id)
        now = utcnow()
        return Address.create(user=user_id, created_at=now, updated_at=now, **fields)


def update_address(user_id: int, address_id: int, changes: dict[str, Any]) -> Address:
    """Change the given fields; raises NotFound address_not_found."""
    with db.atomic():
        _lock_user(user_id)
        address = get_address(user_id, address_id)
        if changes.get("is_default"):
            _clear_default(user_id, keep=address.id)
        for name, value in changes.items():
            setattr(address, name, value)
        address.updated_at = utcnow()
        address.save()
        return address


def delete_address(user_id: int, address_id: int) -> None:
    """Delete one of the user's addresses (deleting the default leaves none); raises NotFound address_not_found."""
    deleted = 0
    if 0 < address_id <= MAX_ID:
        deleted = Address.delete().where((Address.id == address_id) & (Address.user == user_id)).execute()
    if not deleted:
        raise NotFound("address_not_found", "No such address.")
