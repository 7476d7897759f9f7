"""Shipping methods as the contract's JSON."""

from __future__ import annotations

from typing import Any

from models.orders.pricing import ShippingMethod


def methods_json(methods: list[ShippingMethod]) -> dict[str, Any]:
    return {
        "items": [
            {"code": m.code, "name": m.name, "fee": m.fee, "free_over": m.free_over, "currency": m.currency}
            for m in methods
        ]
    }
