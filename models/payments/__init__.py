"""Payment gateways: one small interface (base.py), adapters chosen by name (registry.py)."""

from models.payments.base import (
    Authorization,
    Gateway,
    GatewayUnavailable,
    PaymentDeclined,
    PaymentOrder,
    PaymentResult,
)
from models.payments.registry import get_gateway

__all__ = ["Authorization", "Gateway", "GatewayUnavailable", "PaymentDeclined", "PaymentOrder", "PaymentResult",
           "get_gateway"]
