"""The catalogue: product listing and lookup (pure functions of their arguments, so a cache can sit in
front of them), and the administrators' create/update/delete.

Products are returned as plain dicts of column values (PRODUCT_COLUMNS); web/ shapes them. Stock
reserved by unpaid orders is already taken out of stock_quantity (see models/orders/inventory.py), so the
available quantity is stock_quantity, or unlimited (None) when the product does not track inventory.
"""

from __future__ import annotations

import math
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any

from peewee import SQL, Expression, IntegrityError, fn

from models import events
from models.catalog import slugs
from models.errors import Conflict, NotFound, validation_error
from models.events import AlertLowStock
from models.infra.db import db, tuples
from models.stock import ledger
from models.tables import PRODUCT_SEARCH_EXPRESSION, Product, utcnow

MAX_ID = 2**31 - 1  # products.id is a SERIAL: larger ids cannot exist
# PostgreSQL NOTIFYs this channel on every committed change to products (migrations 004, 010): the
# payload is 'stock:<id>' when only that product's stock changed, 'rating:<id>' when only its rating
# counters did, '*' for anything else.
PRODUCTS_CHANNEL = "products_changed"
PRODUCT_COLUMNS = [
    "id",
    "sku",
    "name",
    "slug",
    "description",
    "price",
    "compare_at_price",
    "cost_price",
    "stock_quantity",
    "low_stock_threshold",
    "track_inventory",
    "category",
    "tags",
    "images",
    "is_published",
    "is_featured",
    "rating_count",
    "rating_sum",
    "created_at",
    "updated_at",
]
_SELECT = [getattr(Product, name) for name in PRODUCT_COLUMNS]
# Each sort ends in id, so rows with equal keys keep one order across pages; each matches an index.
SORTS: dict[str, list[Any]] = {
    "-created_at": [Product.created_at.desc(), Product.id.desc()],
    "created_at": [Product.created_at.asc(), Product.id.asc()],
    "price": [Product.price.asc(), Product.id.asc()],
    "-price": [Product.price.desc(), Product.id.desc()],
    "name": [Product.name.asc(), Product.id.asc()],
}
DEFAULT_SORT = "-created_at"


@dataclass(frozen=True)
class ProductFilters:
    """What a listing is filtered by; None means "not filtered". low_stock/published are admins' filters."""

    category: str | None = None
    tag: str | None = None
    q: str | None = None
    min_price: int | None = None
    max_price: int | None = None
    in_stock: bool | None = None
    featured: bool | None = None
    low_stock: bool | None = None
    published: bool | None = None


@dataclass(frozen=True)
class ProductPage:
    items: list[dict[str, Any]]
    page: int
    page_size: int
    total: int

    @property
    def pages(self) -> int:
        return math.ceil(self.total / self.page_size) if self.total else 0


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# Punctuation that is part of what shoppers search for: "50%" (a '%' or '_' is matched as itself).
_KEPT_PUNCTUATION = frozenset("%_")
# Each word is one ILIKE (one trigram index condition); a word of one or two characters narrows
# nothing, so a query of many short words costs a scan with a test per word. A search with more
# words is refused (422) rather than cut short: every word of a search must appear.
MAX_WORDS = 8


def _is_break(char: str) -> bool:
    """Spaces and punctuation of any script ("linen-shirt.", "men's", "린넨·코튼"), and '|'."""
    if char.isspace() or char == "|":
        return True
    return unicodedata.category(char).startswith("P") and char not in _KEPT_PUNCTUATION


def search_words(q: str) -> list[str]:
    """The words of a search: split on spaces and punctuation (but '%' and '_'), each kept once
    (case-insensitively). "Linen shirt, natural" -> ["Linen", "shirt", "natural"]."""
    words: dict[str, str] = {}
    for word in "".join(" " if _is_break(char) else char for char in q).split():
        words.setdefault(word.casefold(), word)
    return list(words.values())


def too_many_words(words: list[str]) -> str | None:
    """Why a search of these words is refused, or None: at most MAX_WORDS different words."""
    if len(words) <= MAX_WORDS:
        return None
    return f"At most {MAX_WORDS} different words (this search has {len(words)}): a product must contain every word."


def _conditions(f: ProductFilters, is_admin: bool) -> list[Expression]:
    p = Product
    where: list[Any] = []
    published = f.published if is_admin else True
    if published is not None:
        where.append(p.is_published == published)
    if f.category is not None:
        where.append(p.category == f.category)
    if f.tag is not None:
        where.append(p.tags.contains([f.tag]))  # tags @> '["x"]': the products_tags GIN index
    if f.q:
        # Word-wise: every word somewhere in the name or description, in any order, as a substring
        # (so Korean words match inside compounds: "셔츠" finds "린넨셔츠"). The same expression as
        # the products_search_trgm index, so each ILIKE can use it where pg_trgm exists.
        words = search_words(f.q)
        if refusal := too_many_words(words):
            raise validation_error({"q": refusal})
        for word in words:
            where.append(SQL(f"{PRODUCT_SEARCH_EXPRESSION} ILIKE %s", [_like_pattern(word)]))
    if f.min_price is not None:
        where.append(p.price >= f.min_price)
    if f.max_price is not None:
        where.append(p.price <= f.max_price)
    if f.in_stock is True:
        where.append((p.track_inventory == False) | (p.stock_quantity > 0))  # noqa: E712
    elif f.in_stock is False:
        where += [p.track_inventory == True, p.stock_quantity <= 0]  # noqa: E712
    if f.featured is not None:
        where.append(p.is_featured == f.featured)
    if is_admin and f.low_stock is True:
        where += [p.track_inventory == True, p.stock_quantity <= p.low_stock_threshold]  # noqa: E712
    elif is_admin and f.low_stock is False:
        where.append((p.track_inventory == False) | (p.stock_quantity > p.low_stock_threshold))  # noqa: E712
    return where


def listing_sql(filters: ProductFilters, sort: str, page: int, page_size: int, is_admin: bool) -> tuple[str, list[Any]]:
    """The one statement behind list_products: the page's rows joined to the count of all matches.

    A separate count subquery (rather than count(*) OVER ()) lets the page stop after LIMIT rows of
    an index scan while the count runs as its own (index-only where possible) scan."""
    where = _conditions(filters, is_admin)
    rows = Product.select(*_SELECT).order_by(*SORTS[sort]).limit(page_size).offset((page - 1) * page_size)
    count = Product.select(fn.COUNT(SQL("*")))
    if where:
        rows, count = rows.where(*where), count.where(*where)
    rows_sql, rows_params = rows.sql()
    count_sql, count_params = count.sql()
    outer_order = ", ".join(f'"p"."{o.node.name}" {o.direction}' for o in SORTS[sort])
    sql = (
        f'SELECT "t"."n" AS "__total", "p".* FROM ({count_sql}) AS "t"("n") '
        f'LEFT JOIN ({rows_sql}) AS "p" ON TRUE ORDER BY {outer_order}'
    )
    return sql, list(count_params) + list(rows_params)


def list_products(filters: ProductFilters, sort: str, page: int, page_size: int, is_admin: bool) -> ProductPage:
    """One page of the catalogue and the total number of matches, in one SQL statement.

    Non-admins see published products only; `low_stock`/`published` filters apply to admins only."""
    sql, params = listing_sql(filters, sort, page, page_size, is_admin)
    cursor = db.execute_sql(sql, params)
    names = [c[0] for c in cursor.description][1:]
    total, items = 0, []
    for row in cursor.fetchall():
        total = row[0]
        if row[1] is not None:
            items.append(dict(zip(names, row[1:], strict=False)))
    return ProductPage(items, page, page_size, int(total))


def _one(condition: Expression, is_admin: bool) -> dict[str, Any]:
    query = Product.select(*_SELECT).where(condition)
    if not is_admin:
        query = query.where(Product.is_published == True)  # noqa: E712
    row: dict[str, Any] | None = query.dicts().first()
    if row is None:
        raise NotFound("product_not_found", "No such product.")
    return row


def get_product(product_id: int, is_admin: bool) -> dict[str, Any]:
    """A product by id; raises NotFound product_not_found (also for non-admins and unpublished)."""
    if not 0 < product_id <= MAX_ID:
        raise NotFound("product_not_found", "No such product.")
    return _one(Product.id == product_id, is_admin)


def get_product_by_slug(slug: str, is_admin: bool) -> dict[str, Any]:
    """A product by slug, in any case or Unicode normal form (stored slugs are canonical:
    models/catalog/slugs.py); raises NotFound product_not_found (also for non-admins and unpublished)."""
    return _one(Product.slug == slugs.canonical(slug), is_admin)


def _check_prices(row: dict[str, Any]) -> None:
    compare = row.get("compare_at_price")
    if compare is not None and compare <= row["price"]:
        raise validation_error({"compare_at_price": "Must be above price (or null)."})


def _raise_taken(exc: IntegrityError) -> None:
    original = exc.args[0] if exc.args else exc
    constraint = getattr(getattr(original, "diag", None), "constraint_name", None) or str(original)
    if "products_sku" in constraint:
        raise Conflict("sku_taken", "Another product has this SKU.", field="sku")
    if "products_slug" in constraint:
        raise Conflict("slug_taken", "Another product has this slug.", field="slug")
    raise exc


def _free_slug(base: str) -> str:
    """base, or base-2, base-3, ... whichever is not taken yet (for slugs derived from the name)."""
    candidates = [base] + [f"{base}-{n}" for n in range(2, 51)]
    taken = {s for (s,) in tuples(Product.select(Product.slug).where(Product.slug.in_(candidates)))}
    free = [c for c in candidates if c not in taken]
    return free[0] if free else f"{base}-{secrets.token_hex(4)}"


def create_product(data: dict[str, Any], actor: str = "system:catalogue") -> dict[str, Any]:
    """Create a product (slug derived from the name when absent), its stock the ledger's opening
    entry; raises Conflict sku_taken/slug_taken, InvalidInput validation_error (compare_at_price not
    above price)."""
    row = dict(data)
    _check_prices(row)
    derived = not row.get("slug")
    for attempt in range(5):
        if derived:
            row["slug"] = _free_slug(slugs.slugify(row["name"]))
        now = utcnow()
        try:
            with db.atomic():
                product_id = Product.insert(**row, created_at=now, updated_at=now).execute()
                ledger.record_opening(product_id, row.get("stock_quantity", 0), actor)
            return get_product(product_id, is_admin=True)
        except IntegrityError as exc:
            # A derived slug taken by a concurrent create: pick the next free one.
            if derived and attempt < 4 and "products_slug" in str(exc.args[0] if exc.args else exc):
                continue
            _raise_taken(exc)
    raise AssertionError("unreachable")


def update_product(product_id: int, changes: dict[str, Any], actor: str = "system:catalogue") -> dict[str, Any]:
    """Apply the given fields (a new stock_quantity as an adjustment in the stock ledger, which may ask
    for the low-stock alert); raises NotFound product_not_found, Conflict sku_taken/slug_taken,
    InvalidInput validation_error (compare_at_price not above price)."""
    if not 0 < product_id <= MAX_ID:
        raise NotFound("product_not_found", "No such product.")
    changes = dict(changes)
    stock = changes.pop("stock_quantity", None)
    entry = None
    try:
        with db.atomic():
            current = (
                Product.select(Product.price, Product.compare_at_price)
                .where(Product.id == product_id)
                .for_update()
                .dicts()
                .first()
            )
            if current is None:
                raise NotFound("product_not_found", "No such product.")
            _check_prices({**current, **changes})
            if stock is not None:
                _, entry = ledger.set_to(product_id, stock, "adjustment", actor, "PATCH /products") or (0, None)
            if changes or entry is not None:
                Product.update(**changes, updated_at=utcnow()).where(Product.id == product_id).execute()
    except IntegrityError as exc:
        _raise_taken(exc)
    if entry is not None and entry.crossed_low_stock:
        events.emit(AlertLowStock(product_id, entry.id))
    return get_product(product_id, is_admin=True)


def delete_product(product_id: int) -> None:
    """Delete a product; order items keep their snapshot (product_id becomes NULL).
    Raises NotFound product_not_found."""
    deleted = Product.delete().where(Product.id == product_id).execute() if 0 < product_id <= MAX_ID else 0
    if not deleted:
        raise NotFound("product_not_found", "No such product.")
