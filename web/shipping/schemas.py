"""Schemas of /carriers, the order's `tracking` object and the admin's shipment list."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from web.schemas import Page, Strict


class CarrierOut(BaseModel):
    code: str = Field(
        description="Sweet Tracker's carrier code, what PATCH /orders/{id} takes as carrier", examples=["04"]
    )
    name: str = Field(examples=["CJ대한통운"])
    name_en: str = Field(examples=["CJ Logistics"])
    tracking_url: str = Field(description="the carrier's public tracking page; {number} stands for the number")


class CarrierList(BaseModel):
    items: list[CarrierOut]


class TrackingEventOut(BaseModel):
    at: datetime = Field(description="when the carrier scanned the parcel")
    where: str
    description: str = Field(description="the scan in the carrier's words", examples=["집화처리"])
    level: int = Field(
        description="1 preparing, 2 picked up, 3 in transit, 4 at the branch, 5 out for delivery, 6 delivered"
    )


class TrackingOut(BaseModel):
    carrier: str | None
    carrier_name: str | None
    tracking_number: str
    url: str | None = Field(description="the carrier's tracking page for this parcel")
    level: int | None = Field(description="the carrier's last level; null before its first answer")
    status_text: str | None
    delivered: bool
    events: list[TrackingEventOut] = Field(description="each scan once, oldest first")


class ShipmentOut(BaseModel):
    order_id: int
    order_number: str
    carrier: str | None
    carrier_name: str | None
    tracking_number: str | None
    shipped_at: datetime | None
    level: int
    status_text: str | None
    delivered: bool
    failing: bool = Field(description="3 failed polls in a row, or given up 14 days after shipping undelivered")
    failures: int = Field(description="consecutive failed polls")
    last_error: str | None = Field(examples=["104: 유효하지 않은 운송장번호 이거나 택배사 코드 입니다."])
    last_polled_at: datetime | None
    last_success_at: datetime | None
    next_poll_at: datetime | None = Field(description="null once polling stopped")
    stopped_reason: str | None = Field(description="delivered, gave_up or closed")


class ShipmentPage(Page):
    items: list[ShipmentOut]


class ShipmentQuery(Strict):
    failing: bool | None = Field(default=None, description="true: only shipments whose tracking is failing")
    page: int = Field(default=1, ge=1, le=10_000)
    page_size: int = Field(default=20, ge=1, le=100)
