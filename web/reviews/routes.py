"""`/products/{id}/reviews` (published reviews; customers who received the product write one) and
`/admin/reviews/{id}` (staff hide or show). A write changes the product's rating_average and
rating_count, so this process drops the product's cached page at once; PostgreSQL's announcement
tells the other processes."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from models.reviews import service as reviews
from models.tables import User
from web.api import Registry, run
from web.reviews.render import admin_review_json, review_json, review_page
from web.reviews.schemas import AdminReviewOut, ReviewHiddenIn, ReviewIn, ReviewOut, ReviewPageOut, ReviewQuery

api = Registry()
TAGS = ["reviews"]


@api.route(
    "GET",
    "/products/{product_id:int}/reviews",
    summary="A product's published reviews, newest first",
    tags=TAGS,
    query=ReviewQuery,
    response=ReviewPageOut,
    errors=["product_not_found"],
)
async def list_reviews(request: Request, product_id: int, query: ReviewQuery) -> dict[str, Any]:
    return review_page(await run(reviews.published, product_id, query.page, query.page_size))


@api.route(
    "POST",
    "/products/{product_id:int}/reviews",
    summary="Review a product you received (once)",
    tags=TAGS,
    auth="user",
    body=ReviewIn,
    response=ReviewOut,
    status=201,
    errors=["product_not_found", "review_not_allowed", "review_exists"],
)
async def write_review(request: Request, user: User, product_id: int, body: ReviewIn) -> dict[str, Any]:
    review = await run(reviews.write, user, product_id, body.rating, body.title, body.body)
    request.app.state.catalog.forget_product(product_id)
    return review_json(review)


@api.route(
    "PATCH",
    "/admin/reviews/{review_id:int}",
    summary="Hide a review or publish it again",
    tags=["admin"],
    auth="admin",
    body=ReviewHiddenIn,
    response=AdminReviewOut,
    errors=["review_not_found"],
)
async def moderate_review(request: Request, review_id: int, body: ReviewHiddenIn) -> dict[str, Any]:
    review = await run(reviews.set_hidden, review_id, body.hidden)
    request.app.state.catalog.forget_product(review.product_id)
    return admin_review_json(review)
