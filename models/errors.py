"""Domain errors. Each carries a stable snake_case `code`; web/errors.py maps codes to statuses.

    DomainError
    ├── NotFound            (product_not_found, order_not_found, address_not_found, not_found,
    │                        discount_not_found, review_not_found)
    ├── Conflict            (email_taken, sku_taken, slug_taken, insufficient_stock,
    │                        invalid_state, invalid_transition, payment_in_progress,
    │                        discount_code_taken, review_exists)
    ├── InvalidInput        (validation_error, empty_cart, invalid_session, amount_mismatch,
    │                        idempotency_key_reused, invalid_signature)
    │   └── DiscountRefused (discount_invalid, discount_expired, discount_exhausted,
    │                        discount_min_subtotal; models/discounts/rules.py)
    ├── AuthError           (not_authenticated, token_expired, invalid_credentials, forbidden,
    │                        review_not_allowed)
    └── RateLimited         (rate_limited; carries retry_after seconds)

A database or Redis that is down is not a domain error: web/errors.py maps the drivers' own
connection errors to 503 service_unavailable.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "error"
    default_message = "Something went wrong."

    def __init__(self, code: str | None = None, message: str | None = None, **details: Any) -> None:
        self.code = code or self.code
        self.message = message or self.default_message
        self.details: dict[str, Any] = details
        super().__init__(f"{self.code}: {self.message}")


class NotFound(DomainError):
    code = "not_found"
    default_message = "Not found."


class Conflict(DomainError):
    code = "conflict"
    default_message = "The request conflicts with the current state."


class InvalidInput(DomainError):
    code = "validation_error"
    default_message = "The request is invalid."


class AuthError(DomainError):
    code = "not_authenticated"
    default_message = "Authentication required."


class RateLimited(DomainError):
    code = "rate_limited"
    default_message = "Too many requests; try again later."

    def __init__(self, retry_after: int, message: str | None = None, **details: Any) -> None:
        super().__init__(None, message, retry_after=retry_after, **details)
        self.retry_after = retry_after


def validation_error(fields: dict[str, str], message: str = "The request is invalid.") -> InvalidInput:
    """A 422 with details.fields listing each bad field (the contract's shape)."""
    return InvalidInput("validation_error", message, fields=fields)
