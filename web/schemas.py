"""Shared request/response schemas (pydantic v2): validation and the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """Request bodies: unknown fields are refused, strings are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ErrorBody(BaseModel):
    code: str = Field(examples=["validation_error"])
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class Error(BaseModel):
    error: ErrorBody


class UserOut(BaseModel):
    id: int
    email: str
    phone: str | None
    full_name: str
    is_active: bool
    is_verified: bool
    is_admin: bool
    created_at: datetime
    updated_at: datetime


class Page(BaseModel):
    page: int
    page_size: int
    total: int
    pages: int
