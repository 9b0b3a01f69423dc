"""Feature handlers, one module (and one ``Router``) per feature."""

from __future__ import annotations

from bot.core.dispatcher import Router


def core_routers() -> list[Router]:
    """The routers of the core features, in the order ``/help`` lists them."""
    from bot.handlers import admin, studios
    from bot.handlers import help as help_module

    return [help_module.router, studios.router, admin.router]
