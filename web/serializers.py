"""Shaping domain objects into the contract's JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from models.tables import User


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "phone": user.phone,
        "full_name": user.full_name,
        "is_active": user.is_active,
        "is_verified": user.is_verified,
        "is_admin": user.is_admin,
        "created_at": iso(user.created_at),
        "updated_at": iso(user.updated_at),
    }
