"""`/admin/dashboard`: the shop's figures for a window of Asia/Seoul days in one call
(models/reports/dashboard.py: one indexed statement per figure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request

from models.infra.settings import get_settings
from models.reports import dashboard
from web.api import Registry, run
from web.dashboard.schemas import DashboardOut, DashboardQuery
from web.render import iso

api = Registry()
TAGS = ["admin"]


def window(query: DashboardQuery) -> dashboard.Window:
    last = query.to or (query.from_ + timedelta(days=29) if query.from_ else dashboard.today())
    first = query.from_ or last - timedelta(days=29)
    return dashboard.Window(first, last)


@api.route(
    "GET",
    "/admin/dashboard",
    summary="Revenue per day, orders by status, best sellers, low stock and the pipeline's health",
    tags=TAGS,
    auth="admin",
    query=DashboardQuery,
    response=DashboardOut,
)
async def get_dashboard(request: Request, query: DashboardQuery) -> dict[str, Any]:
    span = window(query)
    figures = await run(dashboard.dashboard, span)
    for day in figures["revenue_by_day"]:
        day["day"] = day["day"].isoformat()
    return {
        "from": span.first.isoformat(),
        "to": span.last.isoformat(),
        "timezone": dashboard.TIMEZONE,
        "currency": get_settings().currency,
        "generated_at": iso(datetime.now(UTC)),
        **figures,
    }
