"""Console pages: studios."""

from __future__ import annotations

from aiohttp import web


def add_routes(console: web.Application) -> None:
    """Mount the pages."""
