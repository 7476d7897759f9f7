"""Carriers, an order's tracking and the admin's shipments as the contract's JSON (no queries)."""

from __future__ import annotations

from typing import Any

from models.shipping import carriers
from models.shipping.queries import ShipmentPage
from models.shipping.tracking import FAILING_AFTER
from models.tables import TRACKING_EVENT, Order, OrderEvent, Shipment
from web.render import iso


def carrier_json(carrier: carriers.Carrier) -> dict[str, Any]:
    return {
        "code": carrier.code,
        "name": carrier.name,
        "name_en": carrier.name_en,
        "tracking_url": carrier.tracking_url,
    }


def carriers_json() -> dict[str, Any]:
    return {"items": [carrier_json(c) for c in carriers.CARRIERS.values()]}


def tracking_json(order: Order, events: list[OrderEvent], shipment: Shipment | None) -> dict[str, Any] | None:
    """The order's `tracking` object once it has shipped, else None."""
    if order.shipped_at is None or not order.tracking_number:
        return None
    carrier = carriers.get(order.carrier)
    scans = sorted((e.detail for e in events if e.type == TRACKING_EVENT), key=lambda d: (d["at"], d["level"]))
    return {
        "carrier": order.carrier,
        "carrier_name": carrier.name if carrier else order.carrier,
        "tracking_number": order.tracking_number,
        "url": carrier.url_for(order.tracking_number) if carrier else None,
        "level": shipment.level if shipment is not None and shipment.last_success_at else None,
        "status_text": shipment.status_text if shipment is not None else None,
        "delivered": order.status == "delivered" or bool(shipment and shipment.delivered),
        "events": [{"at": d["at"], "where": d["where"], "description": d["kind"], "level": d["level"]} for d in scans],
    }


def shipment_json(shipment: Shipment, order: Order) -> dict[str, Any]:
    carrier = carriers.get(order.carrier)
    return {
        "order_id": order.id,
        "order_number": order.order_number,
        "carrier": order.carrier,
        "carrier_name": carrier.name if carrier else order.carrier,
        "tracking_number": order.tracking_number,
        "shipped_at": iso(order.shipped_at),
        "level": shipment.level,
        "status_text": shipment.status_text,
        "delivered": shipment.delivered,
        "failing": shipment.failures >= FAILING_AFTER or shipment.stopped_reason == "gave_up",
        "failures": shipment.failures,
        "last_error": shipment.last_error,
        "last_polled_at": iso(shipment.last_polled_at),
        "last_success_at": iso(shipment.last_success_at),
        "next_poll_at": iso(shipment.next_poll_at),
        "stopped_reason": shipment.stopped_reason,
    }


def shipment_page(page: ShipmentPage) -> dict[str, Any]:
    return {
        "items": [shipment_json(s, o) for s, o in page.rows],
        "page": page.page,
        "page_size": page.page_size,
        "total": page.total,
        "pages": page.pages,
    }
