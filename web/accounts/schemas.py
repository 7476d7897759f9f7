"""Request and response schemas of /auth."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, EmailStr, Field, field_validator

from web.schemas import Phone, Strict


class UserOut(BaseModel):
    id: int
    email: str
    phone: str | None
    full_name: str
    is_active: bool
    is_verified: bool
    is_admin: bool
    locale: Literal["ko", "en"] | None = Field(
        description="the language of the customer's emails; null follows the shop's default (DEFAULT_LOCALE)"
    )
    created_at: datetime
    updated_at: datetime


class RegisterIn(Strict):
    email: EmailStr = Field(max_length=254)
    password: str = Field(min_length=8, max_length=128)
    full_name: str = Field(min_length=1, max_length=100)
    phone: Phone | None = None
    locale: Literal["ko", "en"] | None = Field(default=None, description="the language of the customer's emails")


class ProfilePatch(Strict):
    """The fields sent are changed; a field left out stays as it is."""

    full_name: str | None = Field(default=None, min_length=1, max_length=100)
    phone: Phone | None = None
    locale: Literal["ko", "en"] | None = Field(default=None, description="null: follow the shop's default")

    @field_validator("full_name")
    @classmethod
    def _full_name_not_null(cls, value: str | None) -> str | None:
        if value is None:
            raise ValueError("May not be null.")
        return value


class LoginIn(Strict):
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=128)


class RefreshIn(Strict):
    refresh_token: str = Field(min_length=1, max_length=2048)


class TokenOut(Strict):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
