"""The payment resources as JSON (from what the domain read: rendering never queries)."""

from __future__ import annotations

import math
from typing import Any

from models.orders.payment_sync import FlaggedPage
from web.render import iso


def flagged_page(page: FlaggedPage) -> dict[str, Any]:
    items = [
        {
            "order_id": o.id,
            "order_number": o.order_number,
            "status": o.status,
            "payment_status": o.payment_status,
            "gateway": o.payment_gateway,
            "transaction_id": o.payment_transaction_id,
            "total": o.total,
            "currency": o.currency,
            "flag": o.payment_flag,
            "flagged_at": iso(o.payment_flagged_at),
            "updated_at": iso(o.updated_at),
        }
        for o in page.orders
    ]
    return {
        "items": items,
        "page": page.page,
        "page_size": page.page_size,
        "total": page.total,
        "pages": math.ceil(page.total / page.page_size) if page.total else 0,
    }
