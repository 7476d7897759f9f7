"""Gateways by name: the order's payment_gateway picks its adapter here."""

from __future__ import annotations

from collections.abc import Callable

from models.payments.base import Gateway
from models.payments.dummy import DummyGateway

# Stripe and TossPayments adapters register here when they land.
GATEWAYS: dict[str, Callable[[], Gateway]] = {"dummy": DummyGateway}


def get_gateway(name: str) -> Gateway:
    """The adapter for a gateway name; raises ValueError for an unknown one."""
    try:
        return GATEWAYS[name]()
    except KeyError:
        raise ValueError(f"unknown payment gateway {name!r}") from None
