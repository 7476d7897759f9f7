"""GET /categories lists the categories that have published products, with their counts, and
stays true as the catalogue changes; every demo product's image is served by the app."""

from __future__ import annotations

from typing import Any

from models.tables import Product

API = "/api/v1"


def make(sku: str, category: str | None, published: bool = True) -> Product:
    return Product.create(
        sku=sku,
        name=sku,
        slug=sku.lower(),
        price=1000,
        stock_quantity=1,
        category=category,
        is_published=published,
        tags=[],
        images=[],
    )


def test_categories_with_counts_of_published_products(client: Any, admin_headers: dict[str, str]) -> None:
    assert client.get(f"{API}/categories").json() == {"items": []}
    make("A", "tops")
    make("B", "tops")
    make("C", "home-fragrance")
    make("D", "shoes", published=False)
    make("E", None)
    assert client.get(f"{API}/categories").json()["items"] == [
        {"slug": "home-fragrance", "name": "Home fragrance", "product_count": 1},
        {"slug": "tops", "name": "Tops", "product_count": 2},
    ]
    # An administrator's change shows at once (the catalogue cache is cleared by the write).
    created = client.post(
        f"{API}/products", headers=admin_headers, json={"sku": "F", "name": "F", "price": 1000, "category": "shoes"}
    )
    assert created.status_code == 201, created.text
    slugs = {c["slug"]: c["product_count"] for c in client.get(f"{API}/categories").json()["items"]}
    assert slugs == {"home-fragrance": 1, "shoes": 1, "tops": 2}
    # Every category the list shows is a filter of the listing with that many products.
    for slug, count in slugs.items():
        assert client.get(f"{API}/products", params={"category": slug}).json()["total"] == count


def test_every_demo_product_image_is_served(client: Any) -> None:
    from models.catalog import demo

    demo.seed(admin_password="demo-admin-pass")
    products = list(Product.select())
    assert len(products) == len(demo.CATALOGUE)
    for product in products:
        [url] = product.images
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["content-type"].startswith("image/svg+xml")
        assert product.name.replace("&", "&amp;") in response.text
    missing = client.get("/static/demo/no-such-thing.svg")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_migration_points_old_demo_rows_at_the_served_images() -> None:
    import importlib

    from models.infra.db import db

    migration = importlib.import_module("models.migrations.008_storefront")
    fix = next(s for s in migration.STATEMENTS if s.startswith('UPDATE "products"'))
    old = Product.create(
        sku="DEMO-001",
        name="Linen Overshirt",
        slug="linen-overshirt",
        price=1,
        tags=[],
        images=["/static/demo/linen-overshirt.jpg"],
    )
    mine = Product.create(sku="MINE-1", name="Mine", slug="mine", price=1, tags=[], images=["/static/demo/mine.jpg"])
    db.obj.execute_sql(fix)
    assert Product.get_by_id(old.id).images == ["/static/demo/linen-overshirt.svg"]
    assert Product.get_by_id(mine.id).images == ["/static/demo/mine.jpg"]  # not a demo product: left alone
