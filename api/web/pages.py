"""`/reviews` and `/codec`: the review page and the codec server's sign-in page, no build step.

The pages are public (they hold no data); everything they show comes from the API, called
from the browser with the reviewer's or operator's key.
"""

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["STATIC_DIR", "codec_page", "install_pages", "review_page", "router"]

STATIC_DIR = Path(__file__).parent / "static"
"""The page's HTML, CSS and JavaScript."""

# Only the page's own files may run or load, and no other site may frame it.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/reviews")
async def review_page() -> FileResponse:
    """The review page."""
    return FileResponse(STATIC_DIR / "reviews.html", headers=_HEADERS)


@router.get("/codec")
async def codec_page() -> FileResponse:
    """The codec server's sign-in page, for decrypted payloads in the Temporal UI."""
    return FileResponse(STATIC_DIR / "codec.html", headers=_HEADERS)


def install_pages(app: FastAPI) -> None:
    """Serve the pages and their static files from `app`."""
    app.include_router(router)
    app.mount("/reviews/static", StaticFiles(directory=STATIC_DIR), name="review-static")
