"""Customer emails from Jinja2 templates in files: a subject, a plain-text part and an HTML part,
in Korean (the default) or English.

Templates live in `templates/<locale>/<kind>.txt` (its `subject` block is the subject) and
`<kind>.html`; HTML is autoescaped, text is not. Amounts and dates go through the `money` and
`kst` filters, so `12000 KRW` reads `12,000원` in Korean and `₩12,000` in English, and every date is
shown in Asia/Seoul. A missing variable is an error (StrictUndefined), not a blank in a customer's
inbox.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from models.money import money

TEMPLATES = Path(__file__).resolve().parent / "templates"
LOCALES = ("ko", "en")
DEFAULT_LOCALE = "ko"
SEOUL = ZoneInfo("Asia/Seoul")
KINDS = (
    "awaiting_deposit",
    "confirmation",
    "shipped",
    "delivered",
    "cancelled",
    "refunded",
    "payment_failed",
    "expired",
    "abandoned_cart",
)

KO_WEEKDAYS = "월화수목금토일"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def normalize_locale(locale: str | None, default: str = DEFAULT_LOCALE) -> str:
    """'en-US' -> 'en'; anything we have no templates for -> default."""
    short = (locale or "").strip().lower().replace("_", "-").split("-")[0]
    return short if short in LOCALES else default


def kst(value: datetime | date | str | None, locale: str, with_time: bool = True) -> str:
    """A moment shown in Asia/Seoul ('2026년 11월 30일 (월) 17:51' / '30 Nov 2026, 17:51 KST');
    naive datetimes are taken as UTC, ISO strings are parsed, a bare date has no time."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    local: datetime | None = None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=ZoneInfo("UTC"))
        local = value.astimezone(SEOUL)
        day: date = local.date()
    else:
        day, with_time = value, False
    if locale == "ko":
        text = f"{day.year}년 {day.month}월 {day.day}일 ({KO_WEEKDAYS[day.weekday()]})"
        return f"{text} {local:%H:%M}" if with_time and local else text
    text = f"{day.day} {day:%b %Y}"
    return f"{text}, {local:%H:%M} KST" if with_time and local else text


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # The templates ship with the code, and a process starts afresh on a deploy: no stat() of
        # each template and the two it extends at every render (seven per confirmation).
        auto_reload=False,
    )
    env.filters["money"] = lambda amount, currency, locale: money(amount, currency, locale)
    env.filters["kst"] = lambda value, locale, with_time=True: kst(value, locale, with_time)
    return env


def render_email(kind: str, locale: str | None, context: Mapping[str, Any]) -> Rendered:
    """Subject, text and HTML of one email. Raises ValueError for an unknown kind, and jinja2's
    UndefinedError when the context lacks something the template uses."""
    if kind not in KINDS:
        raise ValueError(f"unknown email kind {kind!r}")
    locale = normalize_locale(locale)
    env = environment()
    values = {**context, "locale": locale, "kind": kind}
    text_template = env.get_template(f"{locale}/{kind}.txt")
    subject = "".join(text_template.blocks["subject"](text_template.new_context(values))).strip()
    return Rendered(
        subject=" ".join(subject.split()),  # one line, whatever a name in it contained
        # Macros end their lines themselves; at most one blank line between paragraphs.
        text=re.sub(r"\n{3,}", "\n\n", text_template.render(values)).lstrip("\n"),
        html=env.get_template(f"{locale}/{kind}.html").render(values),
    )
