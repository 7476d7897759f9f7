"""Gateways by name: the order's payment_gateway picks its adapter here, and which of them this
shop offers (a gateway is enabled when its keys are set; the dummy one only outside production;
Toss only when CURRENCY is KRW)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models.infra.settings import Settings, get_settings
from models.payments.base import Gateway
from models.payments.dummy import DummyGateway
from models.payments.stripe_gateway import StripeGateway
from models.payments.toss_gateway import TossGateway

GATEWAYS: dict[str, Callable[[], Gateway]] = {"dummy": DummyGateway, "stripe": StripeGateway, "toss": TossGateway}


def get_gateway(name: str) -> Gateway:
    """The adapter for a gateway name; raises ValueError for an unknown one."""
    try:
        return GATEWAYS[name]()
    except KeyError:
        raise ValueError(f"unknown payment gateway {name!r}") from None


def enabled_gateways(settings: Settings | None = None) -> list[str]:
    """The gateways a shopper may choose here, in a stable order."""
    settings = settings or get_settings()
    enabled = [] if settings.is_production else ["dummy"]
    if settings.stripe_api_key and settings.stripe_publishable_key:
        enabled.append("stripe")
    # TossPayments charges won only: its amounts are KRW, so it is offered in a KRW shop alone.
    if settings.toss_secret_key and settings.toss_client_key and settings.currency == "KRW":
        enabled.append("toss")
    return enabled


def payment_methods(settings: Settings | None = None) -> list[dict[str, Any]]:
    """GET /payment-methods: each enabled gateway with what a frontend needs to start it."""
    settings = settings or get_settings()
    extra = {
        "stripe": {"publishable_key": settings.stripe_publishable_key},
        "toss": {"client_key": settings.toss_client_key},
    }
    return [{"method": name, **extra.get(name, {})} for name in enabled_gateways(settings)]
