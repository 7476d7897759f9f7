"""The catalogue over HTTP: lookup, listing filters and sorts, admin CRUD, and the bad input a client sends."""

from __future__ import annotations

from typing import Any

import pytest

from models.tables import Order, OrderItem, Product
from tests.support import assert_error

API = "/api/v1/products"
PUBLIC_FIELDS = {
    "id",
    "sku",
    "name",
    "slug",
    "description",
    "price",
    "compare_at_price",
    "currency",
    "stock_quantity",
    "available_quantity",
    "in_stock",
    "low_stock_threshold",
    "track_inventory",
    "category",
    "tags",
    "images",
    "is_published",
    "is_featured",
    "rating_average",
    "rating_count",
    "created_at",
    "updated_at",
}


def body(**overrides: Any) -> dict[str, Any]:
    return {
        "sku": "TEE-1",
        "name": "Linen Tee",
        "price": 20000,
        "stock_quantity": 10,
        "category": "tops",
        "tags": ["linen", "summer"],
        "images": ["https://cdn.example.com/tee.jpg"],
        "cost_price": 8000,
        **overrides,
    }


def create(client: Any, headers: dict[str, str], **overrides: Any) -> dict[str, Any]:
    response = client.post(API, json=body(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_admin_creates_a_product_and_the_public_sees_it_without_cost_price(client: Any, admin_headers: Any) -> None:
    product = create(client, admin_headers)
    assert set(product) == PUBLIC_FIELDS | {"cost_price", "low_stock"}
    assert product["slug"] == "linen-tee" and product["cost_price"] == 8000 and product["currency"] == "KRW"
    assert product["available_quantity"] == 10 and product["in_stock"] is True and product["low_stock"] is False
    assert product["tags"] == ["linen", "summer"] and "+00:00" in product["created_at"]
    for path in (f"{API}/{product['id']}", f"{API}/slug/linen-tee"):
        public = client.get(path)
        assert public.status_code == 200 and set(public.json()) == PUBLIC_FIELDS
    listed = client.get(API).json()
    assert listed["total"] == 1 and set(listed["items"][0]) == PUBLIC_FIELDS


def test_slug_is_derived_from_the_name_and_kept_unique(client: Any, admin_headers: Any) -> None:
    assert create(client, admin_headers, sku="A-1", name="Linen Tee!")["slug"] == "linen-tee"
    assert create(client, admin_headers, sku="A-2", name="linen  tee")["slug"] == "linen-tee-2"
    assert create(client, admin_headers, sku="A-3", name="린넨 셔츠")["slug"] == "린넨-셔츠"
    assert create(client, admin_headers, sku="A-4", name="Explicit", slug="Custom-Slug")["slug"] == "custom-slug"


def test_a_derived_slug_can_be_sent_back_and_any_spelling_of_a_slug_finds_its_product(
    client: Any, admin_headers: Any
) -> None:
    tee = create(client, admin_headers, sku="A-1", name="Tee _ Shirt")
    assert tee["slug"] == "tee-shirt"  # the underscore is a break like the spaces around it, not a letter
    copy = client.patch(f"{API}/{tee['id']}", json={"slug": tee["slug"]}, headers=admin_headers)  # sent back as read
    assert copy.status_code == 200, copy.text
    # An administrator's slug is stored as derived ones are: NFKC, lower case ("Café" decomposed).
    cafe = create(client, admin_headers, sku="A-2", name="Cafe", slug="Cafe\u0301-Latte")
    assert cafe["slug"] == "caf\u00e9-latte"
    for spelling, product in (
        ("Tee-Shirt", tee),
        ("TEE-SHIRT", tee),
        ("cafe\u0301-latte", cafe),  # decomposed, as some keyboards and URL encoders send it
        ("CAF\u00c9-Latte", cafe),
    ):
        for headers in ({}, admin_headers):  # the cached anonymous read and the admin's
            found = client.get(f"{API}/slug/{spelling}", headers=headers)
            assert found.status_code == 200, (spelling, found.text)
            assert found.json()["id"] == product["id"]


def test_duplicate_sku_and_slug_are_409(client: Any, admin_headers: Any) -> None:
    first = create(client, admin_headers)
    other = create(client, admin_headers, sku="OTHER-1", name="Other")
    assert_error(client.post(API, json=body(name="New"), headers=admin_headers), 409, "sku_taken")
    assert_error(client.post(API, json=body(sku="NEW-1", slug="linen-tee"), headers=admin_headers), 409, "slug_taken")
    assert_error(client.patch(f"{API}/{other['id']}", json={"sku": "TEE-1"}, headers=admin_headers), 409, "sku_taken")
    assert_error(
        client.patch(f"{API}/{other['id']}", json={"slug": first["slug"]}, headers=admin_headers), 409, "slug_taken"
    )


@pytest.mark.parametrize(
    ("overrides", "bad_fields"),
    [
        ({"price": -1}, {"price"}),
        ({"price": "20000"}, {"price"}),
        ({"price": 1.5}, {"price"}),
        ({"price": 10**13}, {"price"}),
        ({"compare_at_price": 20000}, {"compare_at_price"}),
        ({"compare_at_price": 100}, {"compare_at_price"}),
        ({"stock_quantity": -3, "low_stock_threshold": "5"}, {"stock_quantity", "low_stock_threshold"}),
        ({"sku": "has space", "name": ""}, {"sku", "name"}),
        ({"slug": "bad slug!"}, {"slug"}),
        ({"slug": "tee---shirt"}, {"slug"}),
        ({"slug": "tee_shirt"}, {"slug"}),
        ({"tags": "linen"}, {"tags"}),
        ({"tags": ["ok", ""], "images": ["javascript:alert(1)"]}, {"tags.1", "images.0"}),
        ({"is_published": "yes"}, {"is_published"}),
        ({"owner": "me"}, {"owner"}),
    ],
)
def test_create_refuses_bad_input(
    client: Any, admin_headers: Any, overrides: dict[str, Any], bad_fields: set[str]
) -> None:
    error = assert_error(client.post(API, json=body(**overrides), headers=admin_headers), 422, "validation_error")
    assert set(error["details"]["fields"]) == bad_fields
    assert Product.select().count() == 0


def test_create_requires_sku_name_and_price(client: Any, admin_headers: Any) -> None:
    error = assert_error(client.post(API, json={}, headers=admin_headers), 422, "validation_error")
    assert set(error["details"]["fields"]) == {"sku", "name", "price"}


def test_patch_changes_only_what_is_sent_and_checks_prices_against_the_stored_ones(
    client: Any, admin_headers: Any
) -> None:
    product = create(client, admin_headers, compare_at_price=25000)
    path = f"{API}/{product['id']}"
    changed = client.patch(
        path, json={"price": 18000, "category": None, "tags": ["a", "a", "b"]}, headers=admin_headers
    )
    assert changed.status_code == 200, changed.text
    data = changed.json()
    assert (data["price"], data["category"], data["tags"], data["name"]) == (18000, None, ["a", "b"], "Linen Tee")
    assert data["updated_at"] > product["updated_at"]
    error = assert_error(client.patch(path, json={"price": 30000}, headers=admin_headers), 422, "validation_error")
    assert set(error["details"]["fields"]) == {"compare_at_price"}
    assert client.patch(path, json={"price": 30000, "compare_at_price": None}, headers=admin_headers).status_code == 200
    error = assert_error(
        client.patch(path, json={"name": None, "price": None, "stock_quantity": "x"}, headers=admin_headers),
        422,
        "validation_error",
    )
    assert set(error["details"]["fields"]) == {"name", "price", "stock_quantity"}
    assert_error(client.patch(f"{API}/999999", json={"price": 1}, headers=admin_headers), 404, "product_not_found")


def test_admin_endpoints_refuse_customers_and_anonymous_callers(
    client: Any, admin_headers: Any, user_headers: Any
) -> None:
    product = create(client, admin_headers)
    path = f"{API}/{product['id']}"
    for headers, status, code in ((user_headers, 403, "forbidden"), ({}, 401, "not_authenticated")):
        assert_error(client.post(API, json=body(sku="X-1"), headers=headers), status, code)
        assert_error(client.patch(path, json={"price": 1}, headers=headers), status, code)
        assert_error(client.delete(path, headers=headers), status, code)
    assert Product.get_by_id(product["id"]).price == 20000


def test_unpublished_and_unknown_products_are_404_to_the_public(
    client: Any, admin_headers: Any, user_headers: Any
) -> None:
    hidden = create(client, admin_headers, is_published=False)
    for headers in ({}, user_headers):
        assert_error(client.get(f"{API}/{hidden['id']}", headers=headers), 404, "product_not_found")
        assert_error(client.get(f"{API}/slug/{hidden['slug']}", headers=headers), 404, "product_not_found")
        assert client.get(API, headers=headers).json()["total"] == 0
    assert client.get(f"{API}/{hidden['id']}", headers=admin_headers).status_code == 200
    assert client.get(API, headers=admin_headers).json()["total"] == 1
    assert ids(client.get(f"{API}?published=false", headers=admin_headers)) == [hidden["id"]]
    for path in (f"{API}/424242", f"{API}/99999999999999999999", f"{API}/slug/nope", f"{API}/0"):
        assert_error(client.get(path), 404, "product_not_found")
    assert_error(client.get(f"{API}/abc"), 404, "not_found")


def test_delete_keeps_order_history(client: Any, admin_headers: Any, make_user: Any) -> None:
    product = create(client, admin_headers)
    user, _ = make_user()
    order = Order.create(
        order_number="ORD-1",
        user=user.id,
        currency="KRW",
        subtotal=40000,
        total=40000,
        shipping_address={"city": "Seoul"},
        shipping_method="standard",
        payment_method="dummy",
        payment_gateway="dummy",
    )
    item = OrderItem.create(
        order=order.id,
        product=product["id"],
        product_name="Linen Tee",
        product_sku="TEE-1",
        product_image="https://cdn.example.com/tee.jpg",
        unit_price=20000,
        quantity=2,
        subtotal=40000,
    )
    assert client.delete(f"{API}/{product['id']}", headers=admin_headers).status_code == 204
    kept = OrderItem.get_by_id(item.id)
    assert kept.product_id is None
    assert (kept.product_name, kept.product_sku, kept.unit_price, kept.quantity) == ("Linen Tee", "TEE-1", 20000, 2)
    assert Order.get_by_id(order.id).total == 40000
    assert_error(client.get(f"{API}/{product['id']}", headers=admin_headers), 404, "product_not_found")
    assert_error(client.delete(f"{API}/{product['id']}", headers=admin_headers), 404, "product_not_found")


def test_availability_and_low_stock(client: Any, admin_headers: Any) -> None:
    sold_out = create(client, admin_headers, sku="S-0", name="Sold out", stock_quantity=0)
    low = create(client, admin_headers, sku="S-1", name="Low", stock_quantity=5, low_stock_threshold=5)
    plenty = create(client, admin_headers, sku="S-2", name="Plenty", stock_quantity=50)
    digital = create(client, admin_headers, sku="S-3", name="Gift card", stock_quantity=0, track_inventory=False)
    public = {p["id"]: p for p in client.get(API).json()["items"]}
    assert (public[sold_out["id"]]["in_stock"], public[sold_out["id"]]["available_quantity"]) == (False, 0)
    assert (public[digital["id"]]["in_stock"], public[digital["id"]]["available_quantity"]) == (True, None)
    assert all("low_stock" not in p and "cost_price" not in p for p in public.values())
    admin = {p["id"]: p["low_stock"] for p in client.get(API, headers=admin_headers).json()["items"]}
    assert admin == {sold_out["id"]: True, low["id"]: True, plenty["id"]: False, digital["id"]: False}
    assert set(ids(client.get(f"{API}?low_stock=true", headers=admin_headers))) == {sold_out["id"], low["id"]}
    assert set(ids(client.get(f"{API}?low_stock=false", headers=admin_headers))) == {plenty["id"], digital["id"]}
    assert set(ids(client.get(f"{API}?in_stock=true"))) == {low["id"], plenty["id"], digital["id"]}
    assert ids(client.get(f"{API}?in_stock=false")) == [sold_out["id"]]
    # Reserving stock for an order takes it out of stock_quantity: what is left is what is available.
    Product.update(stock_quantity=Product.stock_quantity - 3).where(Product.id == low["id"]).execute()
    assert client.get(f"{API}/{low['id']}").json()["available_quantity"] == 2


def test_listing_filters_search_sorts_and_pages(client: Any, admin_headers: Any) -> None:
    a = create(
        client,
        admin_headers,
        sku="F-1",
        name="Wool Coat",
        price=90000,
        category="outer",
        tags=["wool"],
        description="Warm 100% wool",
        is_featured=True,
    )
    b = create(client, admin_headers, sku="F-2", name="Linen Shirt", price=30000, category="tops", tags=["linen"])
    c = create(client, admin_headers, sku="F-3", name="Cotton_Tee", price=30000, category="tops", tags=["cotton"])
    assert ids(client.get(API)) == [c["id"], b["id"], a["id"]]
    assert ids(client.get(f"{API}?sort=created_at")) == [a["id"], b["id"], c["id"]]
    assert ids(client.get(f"{API}?sort=price")) == [b["id"], c["id"], a["id"]]
    assert ids(client.get(f"{API}?sort=-price")) == [a["id"], c["id"], b["id"]]
    assert ids(client.get(f"{API}?sort=name")) == [c["id"], b["id"], a["id"]]
    assert ids(client.get(f"{API}?category=tops&sort=price")) == [b["id"], c["id"]]
    assert ids(client.get(f"{API}?tag=wool")) == [a["id"]]
    assert ids(client.get(f"{API}?featured=true")) == [a["id"]]
    assert ids(client.get(f"{API}?featured=false&sort=price")) == [b["id"], c["id"]]
    assert ids(client.get(f"{API}?min_price=30000&max_price=30000&sort=price")) == [b["id"], c["id"]]
    assert ids(client.get(f"{API}?min_price=30001")) == [a["id"]]
    assert ids(client.get(f"{API}?q=LINEN")) == [b["id"]]
    assert ids(client.get(f"{API}?q=warm")) == [a["id"]]  # description
    assert ids(client.get(f"{API}?q=100%25")) == [a["id"]]  # '%' is a character, not a wildcard
    assert ids(client.get(f"{API}?q=n_s")) == []  # so is '_'
    assert ids(client.get(f"{API}?q=n_t")) == [c["id"]]
    assert ids(client.get(f"{API}?category=&q=")) == [c["id"], b["id"], a["id"]]  # blank means unfiltered
    page = client.get(f"{API}?page=2&page_size=2").json()
    assert (page["page"], page["page_size"], page["total"], page["pages"]) == (2, 2, 3, 2)
    assert [i["id"] for i in page["items"]] == [a["id"]]
    beyond = client.get(f"{API}?page=9").json()
    assert beyond["items"] == [] and beyond["total"] == 3
    assert client.get(f"{API}?category=none").json() == {
        "items": [],
        "page": 1,
        "page_size": 20,
        "total": 0,
        "pages": 0,
    }


@pytest.mark.parametrize(
    ("query", "bad_fields"),
    [
        ("sort=cheapest", {"sort"}),
        ("page=0", {"page"}),
        ("page=abc", {"page"}),
        ("page_size=101", {"page_size"}),
        ("page_size=0", {"page_size"}),
        ("min_price=-1", {"min_price"}),
        ("min_price=10&max_price=5", {"max_price"}),
        ("in_stock=maybe&featured=2", {"in_stock", "featured"}),
        ("tag=a&tag=b", {"tag"}),
        ("q=" + "x" * 201, {"q"}),
    ],
)
def test_listing_refuses_bad_query_parameters(client: Any, query: str, bad_fields: set[str]) -> None:
    error = assert_error(client.get(f"{API}?{query}"), 422, "validation_error")
    assert set(error["details"]["fields"]) == bad_fields


def test_admin_only_filters_are_forbidden_to_others(client: Any, user_headers: Any) -> None:
    assert_error(client.get(f"{API}?low_stock=true", headers=user_headers), 403, "forbidden")
    assert_error(client.get(f"{API}?published=false"), 403, "forbidden")


def test_openapi_documents_every_catalogue_endpoint(client: Any) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    listing = paths["/api/v1/products"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {
        "page",
        "page_size",
        "category",
        "tag",
        "q",
        "min_price",
        "max_price",
        "in_stock",
        "featured",
        "sort",
    }
    assert "422" in listing["responses"] and "201" in paths["/api/v1/products"]["post"]["responses"]
    assert "409" in paths["/api/v1/products"]["post"]["responses"]
    for path in ("/api/v1/products/{product_id}", "/api/v1/products/slug/{slug}"):
        assert "404" in paths[path]["get"]["responses"]
    assert "403" in paths["/api/v1/products/{product_id}"]["delete"]["responses"]
