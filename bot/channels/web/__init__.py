"""The web console under ``/console``: server-rendered pages (Jinja2) for the people who run the alliance.

A sub-application of its own, so that its middleware (session, CSRF) guards only ``/console``; ``/healthz``
and the calendar feeds stay open. Every page reads and every action writes through the same feature services
as the chat commands, with the same role checks."""

from __future__ import annotations

from pathlib import Path

import jinja2
from aiohttp import web

from bot.channels.web import (
    achievements,
    activities,
    evaluations,
    funds,
    overview,
    problems,
    records,
    report,
    studio_records,
    studios,
    talent,
)
from bot.channels.web.auth import TEMPLATES, add_sign_in_routes, console_middleware
from bot.channels.web.format import FILTERS

HERE = Path(__file__).resolve().parent


def build_console() -> web.Application:
    """The ``/console`` sub-application: templates, static files, middleware and every page."""
    console = web.Application(middlewares=[console_middleware])
    # plain Jinja2 rather than aiohttp-jinja2, whose context processors store state under string keys
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        auto_reload=False,  # templates ship with the code: no stat() per render
    )
    env.filters.update(FILTERS)
    console[TEMPLATES] = env
    add_sign_in_routes(console)
    console.router.add_static("/static/", HERE / "static", name="static")
    pages = (overview, problems, studio_records, studios, activities, records, achievements, evaluations, funds, talent)
    for module in (*pages, report):
        module.add_routes(console)
    return console


async def _to_console(_request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/console/")


def add_routes(app: web.Application) -> None:
    """Mount the console at ``/console``."""
    app.router.add_get("/console", _to_console)
    app.add_subapp("/console/", build_console())
