"""Reviews: a customer with a delivered order of a product reviews it once (403 review_not_allowed
otherwise, 409 review_exists for a second); the storefront lists published reviews newest first;
staff hide or show one; products carry rating_average and rating_count, kept in step by every write
(a recount after random writes agrees), and a rating change drops the product's cached page."""

from __future__ import annotations

import random
import uuid
from typing import Any

import psycopg2
import pytest

from models import events
from models.cart.store import cart_key
from models.catalog.queries import PRODUCTS_CHANNEL
from models.infra.db import connect_params
from models.infra.redis_client import get_redis
from models.infra.settings import get_settings
from models.orders import payment_steps, pipeline
from models.orders.checkout import place_order
from models.reviews import service as reviews
from models.tables import Order, Product, Review, User
from tests.support import assert_error, checkout_body, wait_for

API = "/api/v1"


@pytest.fixture
def item() -> Product:
    return Product.create(
        sku="R-1", name="Merino crewneck", slug="merino-crewneck", price=20000, stock_quantity=50, tags=[], images=[]
    )


def order_of(user: User, product: Product, until: str = "delivered") -> Order:
    """An order of the product, taken through the pipeline's steps up to `until`."""
    session = "s-" + uuid.uuid4().hex[:12]
    get_redis().hset(cart_key(session), mapping={str(product.id): 1})
    with events.collecting():
        order = place_order(user, session, checkout_body(), None).order
        pipeline.reserve_stock(order.id)
        payment_steps.submit(order.id, user, {"token": "tok_ok"})
        payment_steps.capture(order.id)
        if until in ("shipped", "delivered"):
            pipeline.admin_update(order.id, "shipped", "TRACK-1", "04")
        if until == "delivered":
            pipeline.admin_update(order.id, "delivered", None, None)
    return Order.get_by_id(order.id)


def write(client: Any, headers: dict[str, str], product_id: int, rating: int = 5, **body: Any) -> Any:
    return client.post(
        f"{API}/products/{product_id}/reviews",
        json={"rating": rating, "title": "Warm", "body": "Soft and warm.", **body},
        headers=headers,
    )


def test_a_customer_who_received_the_product_reviews_it_once(client: Any, make_user: Any, item: Product) -> None:
    user, headers = make_user()
    assert_error(write(client, headers, item.id), 403, "review_not_allowed")
    order_of(user, item, until="shipped")  # not delivered yet
    assert_error(write(client, headers, item.id), 403, "review_not_allowed")
    delivered = order_of(user, item)
    created = write(client, headers, item.id, 4, title="Warm enough")
    assert created.status_code == 201, created.text
    review = created.json()
    assert set(review) == {"id", "rating", "title", "body", "author_name", "created_at"}
    assert review["rating"] == 4 and review["title"] == "Warm enough" and review["author_name"] == user.full_name
    assert Review.get_by_id(review["id"]).order_id == delivered.id
    assert_error(write(client, headers, item.id, 1), 409, "review_exists")
    product = client.get(f"{API}/products/{item.id}").json()
    assert product["rating_count"] == 1 and product["rating_average"] == 4.0


def test_reviews_are_checked(client: Any, make_user: Any, item: Product) -> None:
    user, headers = make_user()
    order_of(user, item)
    assert_error(write(client, {}, item.id), 401, "not_authenticated")
    assert_error(write(client, headers, 999999), 404, "product_not_found")
    for rating, extra in (
        (0, {}),
        (6, {}),
        ("5", {}),
        (5, {"title": ""}),
        (5, {"body": "x" * 5001}),
        (5, {"title": "x" * 201}),
        (5, {"hidden": True}),
    ):
        error = assert_error(write(client, headers, item.id, rating, **extra), 422, "validation_error")
        assert error["details"]["fields"], error
    Product.update(is_published=False).where(Product.id == item.id).execute()
    assert_error(write(client, headers, item.id), 404, "product_not_found")
    assert_error(client.get(f"{API}/products/{item.id}/reviews"), 404, "product_not_found")
    assert_error(client.get(f"{API}/products/999999/reviews"), 404, "product_not_found")
    assert Review.select().count() == 0


def test_the_storefront_lists_published_reviews_newest_first(
    client: Any, make_user: Any, admin_headers: Any, item: Product
) -> None:
    written = []
    for n in range(5):
        user, headers = make_user()
        order_of(user, item)
        written.append(write(client, headers, item.id, n + 1, title=f"Review {n}").json()["id"])
    page = client.get(f"{API}/products/{item.id}/reviews", params={"page_size": 2}).json()
    assert [r["id"] for r in page["items"]] == written[::-1][:2]
    assert (page["total"], page["pages"], page["page"]) == (5, 3, 1)
    hidden = client.patch(f"{API}/admin/reviews/{written[3]}", json={"hidden": True}, headers=admin_headers)
    assert hidden.status_code == 200 and hidden.json()["hidden"] is True and hidden.json()["product_id"] == item.id
    listed = client.get(f"{API}/products/{item.id}/reviews").json()
    assert [r["id"] for r in listed["items"]] == [written[4], written[2], written[1], written[0]]
    assert listed["total"] == 4
    product = client.get(f"{API}/products/{item.id}").json()
    assert (product["rating_count"], product["rating_average"]) == (4, round((1 + 2 + 3 + 5) / 4, 2))
    shown = client.patch(f"{API}/admin/reviews/{written[3]}", json={"hidden": False}, headers=admin_headers)
    assert shown.json()["hidden"] is False
    assert client.get(f"{API}/products/{item.id}").json()["rating_count"] == 5
    assert_error(client.get(f"{API}/products/{item.id}/reviews?page_size=51"), 422, "validation_error")


def test_staff_moderation_is_for_staff_and_checked(
    client: Any, make_user: Any, admin_headers: Any, item: Product
) -> None:
    user, headers = make_user()
    order_of(user, item)
    review_id = write(client, headers, item.id).json()["id"]
    url = f"{API}/admin/reviews/{review_id}"
    assert_error(client.patch(url, json={"hidden": True}), 401, "not_authenticated")
    assert_error(client.patch(url, json={"hidden": True}, headers=headers), 403, "forbidden")
    for body in ({}, {"hidden": "yes"}, {"hidden": None}, {"hidden": True, "rating": 1}):
        assert_error(client.patch(url, json=body, headers=admin_headers), 422, "validation_error")
    assert_error(
        client.patch(f"{API}/admin/reviews/999999", json={"hidden": True}, headers=admin_headers),
        404,
        "review_not_found",
    )
    assert not Review.get_by_id(review_id).hidden


def test_the_rating_counters_equal_a_recount_after_random_writes(make_user: Any) -> None:
    rng = random.Random(15)
    products = [
        Product.create(
            sku=f"RR-{n}", name=f"RR{n}", slug=f"rr-{n}", price=10000, stock_quantity=100, tags=[], images=[]
        )
        for n in range(3)
    ]
    users = [make_user()[0] for _ in range(6)]
    for user in users:
        for product in products:
            if rng.random() < 0.8:
                order_of(user, product)
    written: list[int] = []
    for _ in range(80):
        action = rng.random()
        if action < 0.4:
            try:
                user, product = rng.choice(users), rng.choice(products)
                written.append(reviews.write(user, product.id, rng.randint(1, 5), "t", "b").id)
            except Exception as exc:  # not allowed, or already written: both leave the counters alone
                assert getattr(exc, "code", None) in ("review_not_allowed", "review_exists"), exc
        elif written:
            reviews.set_hidden(rng.choice(written), rng.random() < 0.5)
        assert reviews.recount() == []
    assert len(written) > 5 and Review.select().where(Review.hidden == True).count() > 0  # noqa: E712
    Product.delete().where(Product.id == products[0].id).execute()  # its reviews go with it
    assert reviews.recount() == []


def test_a_rating_change_is_announced_for_that_product_only(client: Any, make_user: Any, item: Product) -> None:
    """The products trigger tells every web process that only this product's rating changed, so its
    cached page is dropped (not the whole catalogue), as for a stock change."""
    user, headers = make_user()
    order_of(user, item)
    name, params = connect_params(get_settings().database_url)
    listener = psycopg2.connect(dbname=name, **params)  # type: ignore[arg-type]
    listener.autocommit = True
    try:
        with listener.cursor() as cursor:
            cursor.execute(f"LISTEN {PRODUCTS_CHANNEL}")
        before = client.get(f"{API}/products/{item.id}").json()  # anonymous: kept in this process's cache
        assert before["rating_count"] == 0
        assert write(client, headers, item.id, 3).status_code == 201

        def heard() -> list[str]:
            listener.poll()
            payloads = [n.payload for n in listener.notifies]
            listener.notifies.clear()
            return payloads

        assert wait_for(heard, what="the rating announcement") == [f"rating:{item.id}"]
        after = client.get(f"{API}/products/{item.id}").json()
        assert (after["rating_count"], after["rating_average"]) == (1, 3.0)
    finally:
        listener.close()
