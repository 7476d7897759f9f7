"""The API's documentation pages: Swagger UI at /api/docs and ReDoc at /api/redoc, with their
scripts served by the app itself from pinned, vendored copies (web/static/vendor/VERSIONS says
where each file came from). Nothing is loaded from a CDN, so the pages work offline and a
third party cannot change what runs on them."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
STATIC_URL = "/api/docs/static"
SWAGGER_UI = "vendor/swagger-ui-5.35.0"  # npm swagger-ui-dist 5.35.0 (reads OpenAPI 3.1)
REDOC = "vendor/redoc-2.5.4"  # npm redoc 2.5.4 (reads OpenAPI 3.1)

SWAGGER_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - Swagger UI</title>
<link rel="icon" type="image/png" href="{static}/{swagger}/favicon-32x32.png">
<link rel="stylesheet" href="{static}/{swagger}/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{static}/{swagger}/swagger-ui-bundle.js"></script>
<script src="{static}/docs/swagger-init.js"></script></body></html>"""

REDOC_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - ReDoc</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" type="image/png" href="{static}/{swagger}/favicon-32x32.png">
<style>body {{ margin: 0; padding: 0; }}</style></head>
<body><redoc spec-url="/api/openapi.json"></redoc>
<script src="{static}/{redoc}/redoc.standalone.js"></script></body></html>"""


def routes(title: str) -> list[BaseRoute]:
    """/api/docs, /api/redoc and the files they load (under /api/docs/static)."""
    fill = {"title": title, "static": STATIC_URL, "swagger": SWAGGER_UI, "redoc": REDOC}
    swagger_page, redoc_page = SWAGGER_HTML.format(**fill), REDOC_HTML.format(**fill)

    async def swagger(request: Request) -> Response:
        return HTMLResponse(swagger_page)

    async def redoc(request: Request) -> Response:
        return HTMLResponse(redoc_page)

    return [
        Route("/api/docs", swagger, include_in_schema=False),
        Route("/api/redoc", redoc, include_in_schema=False),
        Mount(STATIC_URL, StaticFiles(directory=STATIC), name="docs-static"),
    ]
