"""Request and response schemas of /auth."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, EmailStr, Field

from web.schemas import Phone, Strict


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


class RegisterIn(Strict):
    email: EmailStr = Field(max_length=254)
    password: str = Field(min_length=8, max_length=128)
    full_name: str = Field(min_length=1, max_length=100)
    phone: Phone | None = None


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
