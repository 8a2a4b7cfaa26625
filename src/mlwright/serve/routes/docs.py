"""``GET /docs``: Swagger UI from assets shipped in the package, so it works offline.

FastAPI's default page loads Swagger UI from a CDN (blank without the internet); the
assets are vendored from npm (swagger-ui-dist, ``frontend/package-lock.json``,
``make assets``) into ``serve/static/swagger-ui/``. Only the named files are served (no
directory is exposed), without an API key like the page itself. ReDoc is not vendored, so
``/redoc`` is off.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, Response

__all__ = ["ASSETS", "DOCS", "router"]

DOCS = "/docs"
_FOLDER = Path(__file__).resolve().parent.parent / "static" / "swagger-ui"
_TYPES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
          "favicon-32x32.png": "image/png"}
#: URL path -> (file, media type) of every asset the page loads.
ASSETS = {f"{DOCS}/static/{name}": (_FOLDER / name, media) for name, media in _TYPES.items()}

router = APIRouter()


async def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=f"{root}/openapi.json", title=f"{request.app.title} - docs",
        oauth2_redirect_url=f"{root}{DOCS}/oauth2-redirect",
        swagger_js_url=f"{root}{DOCS}/static/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{DOCS}/static/swagger-ui.css",
        swagger_favicon_url=f"{root}{DOCS}/static/favicon-32x32.png")


async def oauth2_redirect(request: Request) -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


async def asset(request: Request) -> Response:
    path, media = ASSETS[request.url.path.removeprefix(request.scope.get("root_path", ""))]
    # The files change only with the package: let the browser keep them for a day.
    return FileResponse(path, media_type=media, headers={"Cache-Control": "max-age=86400"})


# Plain routes (not API operations): they stay out of the OpenAPI document.
router.add_route(DOCS, swagger_ui, include_in_schema=False)
router.add_route(f"{DOCS}/oauth2-redirect", oauth2_redirect, include_in_schema=False)
for _path in ASSETS:
    router.add_route(_path, asset, include_in_schema=False)
