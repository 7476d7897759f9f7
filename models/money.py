"""Amounts as people read them. Money is an integer in the currency's minor unit everywhere else
(12000 KRW is 12,000 won, 1250 USD is $12.50); these turn it into text for messages and emails."""

from __future__ import annotations

# Minor units per currency (ISO 4217 exponents); anything not listed has two.
EXPONENT = {"KRW": 0, "JPY": 0, "VND": 0, "CLP": 0, "ISK": 0, "TWD": 2, "BHD": 3, "KWD": 3}
SYMBOL = {"KRW": "₩", "USD": "$", "EUR": "€", "JPY": "¥", "GBP": "£"}
# How Korean writes an amount in its own words; other currencies keep their symbol.
KO_SUFFIX = {"KRW": "원", "JPY": "엔"}


def _number(amount: int, currency: str) -> tuple[str, str]:
    """(sign, digits) of an amount in minor units: 1250 USD -> ('', '12.50'), 5000 KRW -> ('', '5,000')."""
    exponent = EXPONENT.get(currency, 2)
    sign, amount = ("-" if amount < 0 else ""), abs(int(amount))
    if exponent == 0:
        return sign, f"{amount:,}"
    whole, fraction = divmod(amount, 10**exponent)  # integers: no float rounding of large amounts
    return sign, f"{whole:,}.{fraction:0{exponent}d}"


def money(amount: int, currency: str, locale: str) -> str:
    """An integer amount in minor units, as a reader of that locale expects it (12000 KRW: ko
    '12,000원', en '₩12,000'; 1250 USD: '$12.50'); negative amounts keep their sign in front."""
    currency = currency.upper()
    sign, number = _number(amount, currency)
    if locale == "ko" and currency in KO_SUFFIX:
        return f"{sign}{number}{KO_SUFFIX[currency]}"
    if currency in SYMBOL:
        return f"{sign}{SYMBOL[currency]}{number}"
    return f"{sign}{number} {currency}"


def with_code(amount: int, currency: str) -> str:
    """An amount in minor units with its ISO code, for the API's messages: '5,000 KRW', '50.00 USD'."""
    currency = currency.upper()
    sign, number = _number(amount, currency)
    return f"{sign}{number} {currency}"
