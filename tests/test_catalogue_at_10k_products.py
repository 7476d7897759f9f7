"""With 10,000 products, walking every page over HTTP returns exactly the matching products, in the
requested order, each once: filters and sorts are right and pages are stable (ties broken by id).

The expected lists are computed in Python from the rows themselves, not by the listing's SQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from models.infra.db import db

API = "/api/v1/products"
ROWS = 10_000
# Names repeat every 1000 rows, prices every 500 and timestamps every 2500: the tie-breaker on id matters.
INSERT = f"""
INSERT INTO products (sku, name, slug, description, price, compare_at_price, cost_price, stock_quantity,
                      low_stock_threshold, track_inventory, category, tags, images, is_published, is_featured,
                      created_at, updated_at)
SELECT 'SKU-' || i,
       (ARRAY['alpha','bravo','charlie','delta','echo'])[i %% 5 + 1] || lpad((i %% 1000)::text, 4, '0'),
       'item-' || i,
       'item number ' || i || CASE WHEN i %% 97 = 0 THEN ' with silk lining' ELSE '' END,
       ((i * 37) %% 500) * 100 + 1000, NULL, 500,
       CASE WHEN i %% 11 = 0 THEN 0 ELSE i %% 40 END, 5, i %% 13 <> 0,
       'cat-' || (i %% 8), jsonb_build_array('t' || (i %% 6), 'u' || (i %% 9)), '[]'::jsonb,
       i %% 17 <> 0, i %% 10 = 3,
       timestamptz '2025-01-01 00:00:00+00' + (i %% 2500) * interval '1 minute', now()
FROM generate_series(1, {ROWS}) AS i
"""
COLUMNS = [
    "id",
    "name",
    "description",
    "price",
    "stock_quantity",
    "low_stock_threshold",
    "track_inventory",
    "category",
    "tags",
    "is_published",
    "is_featured",
    "created_at",
]
SORT_KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "-created_at": lambda r: (-r["created_at"].timestamp(), -r["id"]),
    "created_at": lambda r: (r["created_at"].timestamp(), r["id"]),
    "price": lambda r: (r["price"], r["id"]),
    "-price": lambda r: (-r["price"], -r["id"]),
    "name": lambda r: (r["name"], r["id"]),
}


def in_stock(r: dict[str, Any]) -> bool:
    return not r["track_inventory"] or r["stock_quantity"] > 0


# (query string, predicate on a row, page_size, as admin)
CASES: list[tuple[str, Callable[[dict[str, Any]], bool], int, bool]] = [
    ("sort=-created_at", lambda r: True, 100, False),
    ("sort=price", lambda r: True, 100, False),
    ("sort=name&category=cat-3", lambda r: r["category"] == "cat-3", 37, False),
    ("sort=-price&tag=t2&in_stock=true", lambda r: "t2" in r["tags"] and in_stock(r), 50, False),
    (
        "sort=created_at&featured=true&min_price=5000&max_price=30000",
        lambda r: r["is_featured"] and 5000 <= r["price"] <= 30000,
        20,
        False,
    ),
    ("q=SILK", lambda r: "silk" in (r["name"] + " " + r["description"]).lower(), 7, False),
    ("sort=name&in_stock=false&featured=false", lambda r: not in_stock(r) and not r["is_featured"], 100, False),
    (
        "sort=price&low_stock=true",
        lambda r: r["track_inventory"] and r["stock_quantity"] <= r["low_stock_threshold"],
        100,
        True,
    ),
    ("sort=-created_at&published=false&tag=u4", lambda r: not r["is_published"] and "u4" in r["tags"], 10, True),
]


@pytest.fixture
def catalogue() -> list[dict[str, Any]]:
    db.obj.execute_sql(INSERT)
    db.obj.execute_sql("ANALYZE products")
    cursor = db.obj.execute_sql(f"SELECT {', '.join(COLUMNS)} FROM products")
    rows = [dict(zip(COLUMNS, row, strict=True)) for row in cursor.fetchall()]
    assert len(rows) == ROWS and isinstance(rows[0]["created_at"], datetime)
    return rows


def walk(client: Any, query: str, page_size: int, headers: dict[str, str]) -> tuple[list[int], int]:
    """Every page of a listing, in order; checks that each page reports the same total and page count."""
    seen: list[int] = []
    page, pages, total = 1, None, None
    while True:
        response = client.get(f"{API}?{query}&page={page}&page_size={page_size}", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        total = body["total"] if total is None else total
        pages = body["pages"] if pages is None else pages
        assert (body["page"], body["page_size"], body["total"], body["pages"]) == (page, page_size, total, pages)
        seen += [item["id"] for item in body["items"]]
        if page >= pages:
            break
        assert len(body["items"]) == page_size
        page += 1
    return seen, total


@pytest.mark.slow
def test_filters_and_sorts_across_every_page(
    client: Any, catalogue: list[dict[str, Any]], admin_headers: dict[str, str]
) -> None:
    for query, keep, page_size, admin in CASES:
        sort = next((p.split("=")[1] for p in query.split("&") if p.startswith("sort=")), "-created_at")
        visible = [r for r in catalogue if admin or r["is_published"]]
        expected = [r["id"] for r in sorted((r for r in visible if keep(r)), key=SORT_KEYS[sort])]
        assert expected, query  # every case selects something
        got, total = walk(client, query, page_size, admin_headers if admin else {})
        assert total == len(expected), query
        assert len(set(got)) == len(got), f"{query}: a product appeared on two pages"
        assert got == expected, query


def test_a_page_past_the_end_is_empty_but_counts(client: Any, catalogue: list[dict[str, Any]]) -> None:
    published = sum(1 for r in catalogue if r["is_published"])
    body = client.get(f"{API}?page=1000&page_size=100").json()
    assert body["items"] == [] and body["total"] == published and body["pages"] == -(-published // 100)
