"""What a request may carry into PostgreSQL (and back out through orjson): text without NUL or
unpaired surrogates (PostgreSQL cannot store them), integers within 64 bits (what the columns and
orjson hold). web/api.py checks every parsed body, query and path parameter of every endpoint with
this; code that parses a request itself (a webhook) calls refuse_unstorable too.
"""

from __future__ import annotations

import re
from typing import Any

from models.errors import validation_error

UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
MAX_INT = 2**63 - 1
NOT_STORABLE = "Contains a character that cannot be stored (NUL or an unpaired surrogate)."
OUT_OF_RANGE = f"Must be an integer from {-MAX_INT - 1} to {MAX_INT}."


def unstorable(value: Any, where: str, found: dict[str, str]) -> dict[str, str]:
    """Collect {dotted.place: problem} for every value in a parsed request that cannot be stored.

    Recursive, which is the quickest for what requests hold (this runs on every request). JSON
    nested past Python's recursion limit (orjson parses up to 1,024 levels) is walked again with a
    stack of its own: a 422 for what it holds, never a RecursionError."""
    try:
        return _walk(value, where, found)
    except RecursionError:
        found.clear()
        return _walk_deep(value, where, found)


def _walk(value: Any, where: str, found: dict[str, str]) -> dict[str, str]:
    if isinstance(value, str):
        if UNSTORABLE.search(value):
            found[where] = NOT_STORABLE
    elif isinstance(value, int) and not isinstance(value, bool):
        if not -MAX_INT - 1 <= value <= MAX_INT:
            found[where] = OUT_OF_RANGE
    elif isinstance(value, dict):
        for key, item in value.items():
            place = f"{where}.{key}" if where else str(key)
            if UNSTORABLE.search(str(key)):
                found[place] = NOT_STORABLE
            _walk(item, place, found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, f"{where}.{index}" if where else str(index), found)
    return found


def _walk_deep(value: Any, where: str, found: dict[str, str]) -> dict[str, str]:
    """What _walk finds, in the same order, without recursion."""
    pending: list[tuple[Any, str]] = [(value, where)]
    while pending:
        item, place = pending.pop()
        if isinstance(item, str):
            if UNSTORABLE.search(item):
                found[place] = NOT_STORABLE
        elif isinstance(item, int) and not isinstance(item, bool):
            if not -MAX_INT - 1 <= item <= MAX_INT:
                found[place] = OUT_OF_RANGE
        elif isinstance(item, dict):
            inner_items = []
            for key, inner in item.items():
                inner_place = f"{place}.{key}" if place else str(key)
                if UNSTORABLE.search(str(key)):
                    found[inner_place] = NOT_STORABLE
                inner_items.append((inner, inner_place))
            pending.extend(reversed(inner_items))  # popped in the document's order
        elif isinstance(item, list):
            pending.extend(reversed([(inner, f"{place}.{i}" if place else str(i)) for i, inner in enumerate(item)]))
    return found


def refuse_unstorable(value: Any, where: str = "") -> None:
    """Raise InvalidInput validation_error naming each place that holds what cannot be stored."""
    found = unstorable(value, where, {})
    if found:  # the places are echoed back: written so that they can be (NUL as \u0000)
        raise validation_error(
            {UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", place): problem for place, problem in found.items()}
        )
