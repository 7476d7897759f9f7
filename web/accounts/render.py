"""Users as the contract's JSON (never the password hash)."""

from __future__ import annotations

from typing import Any

from models.tables import User
from web.render import iso


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "phone": user.phone,
        "full_name": user.full_name,
        "is_active": user.is_active,
        "is_verified": user.is_verified,
        "is_admin": user.is_admin,
        "locale": user.locale,
        "created_at": iso(user.created_at),
        "updated_at": iso(user.updated_at),
    }
