"""`/admin/orders`: the staff's order desk. Every customer's orders, newest first, filtered and
searched; one order with everything an operator needs; and the re-drive of one order on demand
(the beat job's logic: whatever its state says is due, sent now)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

from starlette.requests import Request

from models.errors import validation_error
from models.orders import admin, pipeline
from tasks.dispatch import perform
from web.admin.render import admin_order_json, admin_page_json, sent_json
from web.admin.schemas import AdminOrderOut, AdminOrderPageOut, AdminOrderQuery, RedriveOut
from web.api import Registry, run

api = Registry()
TAGS = ["admin"]


def _start(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value, time.min, tzinfo=UTC)


def _end(value: date | datetime) -> datetime:
    """The exclusive upper bound: a date includes its whole day; a date-time is taken as given."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)) + timedelta(microseconds=1)
    return datetime.combine(value + timedelta(days=1), time.min, tzinfo=UTC)


@api.route(
    "GET",
    "/admin/orders",
    summary="Every customer's orders, newest first: filter, search, paginate",
    tags=TAGS,
    auth="admin",
    query=AdminOrderQuery,
    response=AdminOrderPageOut,
)
async def list_orders(request: Request, query: AdminOrderQuery) -> dict[str, Any]:
    start = _start(query.created_from) if query.created_from is not None else None
    before = _end(query.created_to) if query.created_to is not None else None
    if start is not None and before is not None and start >= before:
        raise validation_error({"created_to": "Must not be before created_from."})
    filters = admin.AdminFilters(
        status=query.status,
        payment_status=query.payment_status,
        created_from=start,
        created_before=before,
        q=query.q or None,
    )
    return admin_page_json(await run(admin.list_orders, filters, query.page, query.page_size))


@api.route(
    "GET",
    "/admin/orders/{order_id:int}",
    summary="One order with its customer, payment references, full event timeline (task ids) and emails sent",
    tags=TAGS,
    auth="admin",
    response=AdminOrderOut,
    errors=["order_not_found"],
)
async def get_order(request: Request, order_id: int) -> dict[str, Any]:
    return admin_order_json(await run(admin.detail, order_id))


@api.route(
    "POST",
    "/admin/orders/{order_id:int}/redrive",
    summary="Send now whatever the order's state says is due (the re-drive beat job's logic, for one order)",
    tags=TAGS,
    auth="admin",
    response=RedriveOut,
    errors=["order_not_found"],
)
async def redrive(request: Request, order_id: int) -> dict[str, Any]:
    return cast(dict[str, Any], await run(perform, pipeline.redrive_order, order_id, render=sent_json))
