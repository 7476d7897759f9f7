"""Demo data for `manage.py seed-demo`: a small fashion/lifestyle catalogue and an admin."""

from __future__ import annotations

import re
import secrets

from models.accounts import service as accounts
from models.infra.db import db, tuples
from models.stock import ledger
from models.tables import Product, SeedRun, User

# (category, name, price in KRW, stock, tags)
CATALOGUE: list[tuple[str, str, int, int, list[str]]] = [
    ("tops", "Linen Overshirt", 89000, 40, ["linen", "summer"]),
    ("tops", "Heavyweight Pocket Tee", 39000, 120, ["cotton", "basics"]),
    ("tops", "Merino Crewneck", 129000, 25, ["wool", "winter"]),
    ("tops", "Oxford Button-Down", 79000, 60, ["cotton", "classic"]),
    ("tops", "Waffle Henley", 59000, 3, ["cotton", "layering"]),
    ("bottoms", "Wide Wool Trousers", 159000, 18, ["wool", "tailoring"]),
    ("bottoms", "Selvedge Denim", 189000, 30, ["denim", "classic"]),
    ("bottoms", "Pleated Chinos", 99000, 45, ["cotton", "tailoring"]),
    ("bottoms", "Drawstring Linen Shorts", 69000, 0, ["linen", "summer"]),
    ("outerwear", "Chore Coat", 219000, 12, ["canvas", "workwear"]),
    ("outerwear", "Quilted Liner Jacket", 179000, 20, ["nylon", "layering"]),
    ("outerwear", "Wool Balmacaan Coat", 389000, 6, ["wool", "winter"]),
    ("shoes", "Leather Derby", 249000, 15, ["leather", "classic"]),
    ("shoes", "Canvas Low-Top", 89000, 70, ["canvas", "summer"]),
    ("shoes", "Suede Desert Boot", 199000, 9, ["suede", "classic"]),
    ("accessories", "Ribbed Beanie", 35000, 80, ["wool", "winter"]),
    ("accessories", "Canvas Tote", 45000, 100, ["canvas", "basics"]),
    ("accessories", "Leather Belt", 69000, 35, ["leather", "basics"]),
    ("accessories", "Silk Bandana", 49000, 4, ["silk", "summer"]),
    ("home", "Hinoki Room Spray", 42000, 50, ["fragrance"]),
    ("home", "Stoneware Mug", 28000, 90, ["ceramic"]),
    ("home", "Linen Bath Towel", 58000, 30, ["linen"]),
    ("home", "Beeswax Candle", 32000, 60, ["fragrance"]),
    ("grooming", "Cedar Hand Balm", 26000, 75, ["skincare"]),
]


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "item"


def image_path(name: str) -> str:
    """The demo product's image: a placeholder SVG the app serves (web/demo_images.py)."""
    return f"/static/demo/{slugify(name)}.svg"


DEMO_CATALOGUE = "demo-catalogue"  # its seed_runs row
SEED_LOCK = 727273  # advisory lock: two processes seeding at once seed once


def seed_catalogue() -> int:
    """Insert the demo catalogue once per database; returns how many products were inserted.

    Once done (a seed_runs row), later calls insert nothing: products an administrator edited,
    re-skued or deleted stay as they are. A demo product whose SKU or slug is already taken by
    another product is left out rather than failing the load."""
    inserted = 0
    with db.atomic():
        db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (SEED_LOCK,))
        if SeedRun.get_or_none(SeedRun.name == DEMO_CATALOGUE) is not None:
            return 0
        skus = {sku for (sku,) in tuples(Product.select(Product.sku))}
        slugs = {slug for (slug,) in tuples(Product.select(Product.slug))}
        for index, (category, name, price, stock, tags) in enumerate(CATALOGUE, start=1):
            sku, slug = f"DEMO-{index:03d}", slugify(name)
            if sku in skus or slug in slugs:
                continue
            product = Product.create(
                sku=sku,
                name=name,
                slug=slug,
                description=f"{name}: part of the demo catalogue.",
                price=price,
                compare_at_price=price + 20000 if index % 4 == 0 else None,
                cost_price=price // 2,
                stock_quantity=stock,
                low_stock_threshold=5,
                category=category,
                tags=tags,
                images=[image_path(name)],
                is_published=index != 24,
                is_featured=index % 5 == 0,
            )
            ledger.record_opening(product.id, stock, "system:seed-demo")
            inserted += 1
        SeedRun.create(name=DEMO_CATALOGUE)
    return inserted


def seed(admin_email: str = "admin@shop.local", admin_password: str | None = None) -> tuple[int, str, str | None]:
    """The demo catalogue (once per database, seed_catalogue) and an admin.

    Returns (products inserted, admin email, admin password or None when the admin already existed).
    """
    inserted = seed_catalogue()
    if User.get_or_none(User.email == admin_email):
        return inserted, admin_email, None
    password = admin_password or secrets.token_urlsafe(9)
    accounts.create_admin(admin_email, password)
    return inserted, admin_email, password
