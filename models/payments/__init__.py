"""Payment gateways: one small interface (base.py), adapters chosen by name (registry.py): dummy,
Stripe (stripe_gateway.py) and TossPayments (toss_gateway.py)."""

from models.payments.base import (
    Authorization,
    Gateway,
    GatewayRejected,
    GatewayUnavailable,
    ManualActionRequired,
    PaymentDeclined,
    PaymentOrder,
    PaymentResult,
)
from models.payments.registry import enabled_gateways, get_gateway, payment_methods

__all__ = [
    "Authorization",
    "Gateway",
    "GatewayRejected",
    "GatewayUnavailable",
    "ManualActionRequired",
    "PaymentDeclined",
    "PaymentOrder",
    "PaymentResult",
    "enabled_gateways",
    "get_gateway",
    "payment_methods",
]
