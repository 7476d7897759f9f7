"""Addresses as the contract's JSON."""

from __future__ import annotations

from typing import Any

from models.tables import Address
from web.render import iso


def address_json(address: Address) -> dict[str, Any]:
    return {
        "id": address.id,
        "recipient_name": address.recipient_name,
        "phone": address.phone,
        "postal_code": address.postal_code,
        "address_line1": address.address_line1,
        "address_line2": address.address_line2,
        "city": address.city,
        "is_default": address.is_default,
        "created_at": iso(address.created_at),
        "updated_at": iso(address.updated_at),
    }
