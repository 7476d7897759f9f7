"""Placeholder images for the demo catalogue (`manage.py seed-demo`), drawn as small SVGs from the
catalogue itself so every demo product's image resolves without shipping binary files:
GET /static/demo/<slug>.svg. Unknown names are 404 with the contract's error body."""

from __future__ import annotations

from functools import lru_cache
from html import escape

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from models.catalog.demo import CATALOGUE, image_path
from web.errors import error_response

# Background and ink per category: a muted palette a storefront's grid can show side by side.
COLOURS = {
    "tops": ("#e8e1d5", "#5b4a36"),
    "bottoms": ("#d9e0e8", "#2f4256"),
    "outerwear": ("#dfe5d8", "#3e5232"),
    "shoes": ("#eadbd6", "#6b3a2e"),
    "accessories": ("#ece6d2", "#6a5a22"),
    "home": ("#e3dcea", "#4b3a63"),
    "grooming": ("#d8e8e4", "#2c5a50"),
}
DEFAULT_COLOURS = ("#e6e6e6", "#444444")

SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="800" height="800" viewBox="0 0 800 800">
<title>{name}</title>
<rect width="800" height="800" fill="{background}"/>
<circle cx="400" cy="340" r="150" fill="none" stroke="{ink}" stroke-width="6" opacity="0.35"/>
<g font-family="Helvetica, Arial, sans-serif" fill="{ink}" text-anchor="middle">
<text x="400" y="600" font-size="44">{name}</text>
<text x="400" y="660" font-size="26" opacity="0.7">{category}</text>
</g>
</svg>
"""


@lru_cache(maxsize=1)
def _images() -> dict[str, bytes]:
    """File name -> SVG for every demo product."""
    images = {}
    for category, name, *_ in CATALOGUE:
        background, ink = COLOURS.get(category, DEFAULT_COLOURS)
        svg = SVG.format(name=escape(name), category=escape(category), background=background, ink=ink)
        images[image_path(name).rsplit("/", 1)[1]] = svg.encode()
    return images


async def demo_image(request: Request) -> Response:
    body = _images().get(request.path_params["name"])
    if body is None:
        return error_response(404, "not_found", f"No demo image {request.path_params['name']!r}.")
    return Response(body, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


routes = [Route("/static/demo/{name}", demo_image, methods=["GET", "HEAD"])]
