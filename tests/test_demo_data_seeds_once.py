"""The demo catalogue of `make run` is loaded once per database: starting again after an
administrator edited, re-skued or deleted demo products neither fails nor undoes their work, and a
catalogue that already uses a demo product's slug or SKU does not stop the load."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from models.catalog import demo
from models.infra.db import db
from models.tables import Product, SeedRun


def test_the_catalogue_is_loaded_once() -> None:
    assert demo.seed_catalogue() == len(demo.CATALOGUE)
    assert SeedRun.get_or_none(SeedRun.name == demo.DEMO_CATALOGUE) is not None
    assert demo.seed_catalogue() == 0
    assert Product.select().count() == len(demo.CATALOGUE)


def test_admin_edits_survive_the_next_start() -> None:
    demo.seed_catalogue()
    Product.update(sku="MY-OWN-SKU", stock_quantity=1).where(Product.sku == "DEMO-003").execute()
    Product.delete().where(Product.sku == "DEMO-005").execute()
    # A new product taking a demo product's old SKU, another taking a demo name (and so its slug).
    Product.create(
        sku="DEMO-003",
        name="Something else",
        slug="something-else",
        price=1000,
        stock_quantity=5,
        category="tops",
        tags=[],
        images=[],
    )
    Product.update(slug="linen-overshirt-old").where(Product.sku == "DEMO-001").execute()
    Product.create(
        sku="NEW-1",
        name="Linen Overshirt",
        slug="linen-overshirt",
        price=1000,
        stock_quantity=5,
        category="tops",
        tags=[],
        images=[],
    )
    count = Product.select().count()

    assert demo.seed(admin_email="admin@example.com")[0] == 0  # a start after the edits: no error
    assert Product.select().count() == count
    assert Product.get_or_none(Product.sku == "DEMO-005") is None  # deleted stays deleted
    assert Product.get(Product.sku == "MY-OWN-SKU").stock_quantity == 1


def test_a_catalogue_using_demo_slugs_or_skus_does_not_stop_the_first_load() -> None:
    Product.create(
        sku="OWN-1",
        name="Stoneware Mug",
        slug="stoneware-mug",
        price=1000,
        stock_quantity=5,
        category="home",
        tags=[],
        images=[],
    )
    Product.create(
        sku="DEMO-002",
        name="Own tee",
        slug="own-tee",
        price=1000,
        stock_quantity=5,
        category="tops",
        tags=[],
        images=[],
    )
    assert demo.seed_catalogue() == len(demo.CATALOGUE) - 2
    assert demo.seed_catalogue() == 0


def test_two_processes_starting_together_load_it_once() -> None:
    def load() -> int:
        with db.obj.connection_context():
            return demo.seed_catalogue()

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: load(), range(4)))
    assert sorted(results) == [0, 0, 0, len(demo.CATALOGUE)]
    assert Product.select().count() == len(demo.CATALOGUE)
