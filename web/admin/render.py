"""The order desk's JSON (from what models.orders.admin read: rendering never queries)."""

from __future__ import annotations

from typing import Any

from models import events
from models.orders.admin import AdminOrderPage, AdminOrderView
from models.tables import EmailLog
from tasks.dispatch import ROUTES
from web.orders.render import order_json, order_summary
from web.render import iso


def admin_page_json(page: AdminOrderPage) -> dict[str, Any]:
    items = []
    for row in page.rows:
        out = order_summary(row.order, row.item_count)
        out.update(
            {
                "user_id": row.order.user_id,
                "guest": row.order.user_id is None,
                "email": row.email,
                "recipient_name": row.recipient_name,
            }
        )
        items.append(out)
    return {"items": items, "page": page.page, "page_size": page.page_size, "total": page.total, "pages": page.pages}


def _email(row: EmailLog) -> dict[str, Any]:
    return {
        "kind": row.kind,
        "recipient": row.recipient,
        "status": row.status,
        "attempts": row.attempts,
        "message_id": row.message_id,
        "created_at": iso(row.created_at),
        "sent_at": iso(row.sent_at),
    }


def admin_order_json(found: AdminOrderView) -> dict[str, Any]:
    order, customer = found.view.order, found.customer
    out = order_json(found.view)
    if customer is not None:
        out["customer"] = {
            "user_id": customer.id,
            "email": customer.email,
            "full_name": customer.full_name,
            "phone": customer.phone,
            "guest": False,
        }
    else:
        out["customer"] = {
            "user_id": None,
            "email": order.guest_email,
            "full_name": order.guest_name,
            "phone": order.guest_phone,
            "guest": True,
        }
    out["payment"] = {
        **out["payment"],
        "proof": order.payment_proof,
        "next_action": order.payment_next_action,
        "submitted_at": iso(order.payment_submitted_at),
        "paid_at": iso(order.paid_at),
    }
    out["emails"] = [_email(e) for e in found.emails]
    return out


def sent_json(commands: list[events.Command]) -> dict[str, Any]:
    return {"sent": [{"command": type(c).__name__, "task": ROUTES[type(c)].task, **c.fields()} for c in commands]}
