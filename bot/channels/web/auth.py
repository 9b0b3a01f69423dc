"""Sign-in and request guards of the console: the one-time link opens a session cookie; every other page needs
the session; every state-changing request carries the session's CSRF token; pages check the viewer's role."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jinja2
from aiohttp import web

from bot.core.dispatcher import Caller, Role
from bot.services.console import COOKIE, ConsoleService, SignInRefused
from bot.store.studios import Studio

log = logging.getLogger(__name__)

SIGN_IN_HINT = "请在企业微信里向机器人发送 /后台 获取登录链接"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_ROUTES = frozenset({"console-login", "console-signin", "static"})


@dataclass(slots=True, frozen=True)
class Viewer:
    """Who is looking at the console: the caller as the chat sees them, and the session's CSRF token."""

    caller: Caller
    csrf: str
    name: str

    @property
    def user_id(self) -> str:
        """The signed-in WeCom user id."""
        return self.caller.user_id

    def at_least(self, role: Role) -> bool:
        """Whether the viewer has ``role`` or a higher one."""
        return self.caller.at_least(role)


VIEWER: web.RequestKey[Viewer] = web.RequestKey("console_viewer", Viewer)
TEMPLATES: web.AppKey[jinja2.Environment] = web.AppKey("console_templates", jinja2.Environment)


@dataclass(slots=True, frozen=True)
class Page:
    """One entry of the navigation: label, path and the least role that sees it."""

    key: str
    label: str
    path: str
    role: Role = Role.MEMBER


NAV: tuple[Page, ...] = (
    Page("overview", "概览", "/console/"),
    Page("problems", "技术问题", "/console/problems"),
    Page("studios", "工作室", "/console/studios"),
    Page("activities", "活动", "/console/activities"),
    Page("topics", "课题", "/console/topics"),
    Page("achievements", "成果", "/console/achievements"),
    Page("awards", "奖励", "/console/awards"),
    Page("evaluations", "评选", "/console/evaluations"),
    Page("funds", "经费", "/console/funds", Role.ALLIANCE_LEAD),
    Page("talent", "人才", "/console/talent"),
    Page("report", "年度报表", "/console/report"),
    Page("audit", "审计日志", "/console/audit", Role.ADMIN),
)


def bot_of(request: web.Request) -> Any:
    """The ``BotApp`` serving this request."""
    from bot.app import BOT_KEY

    return request.config_dict[BOT_KEY]


def service_of(request: web.Request) -> ConsoleService:
    """The console's sign-in service."""
    service: ConsoleService = bot_of(request).runtime.feature(ConsoleService)
    return service


async def studios_by_id(request: web.Request) -> dict[str, Studio]:
    """Every studio by id, straight from the store (not the routing index, which pages need not build)."""
    return {s.id: s for s in await bot_of(request).store.studios.all()}


def viewer_of(request: web.Request) -> Viewer:
    """The signed-in viewer (the middleware set it)."""
    return request[VIEWER]


def template_context(request: web.Request) -> dict[str, Any]:
    """What every template sees: the viewer, the navigation they may use, the time zone."""
    bot = bot_of(request)
    viewer = request.get(VIEWER)
    nav = [p for p in NAV if viewer is not None and viewer.at_least(p.role)]
    return {"viewer": viewer, "nav": nav, "tz": bot.settings.tz, "active": "", "notice": ""}


def render(request: web.Request, template: str, context: dict[str, Any] | None = None) -> str:
    """A template rendered with the shared context."""
    env = request.config_dict[TEMPLATES]
    return env.get_template(template).render({**template_context(request), **(context or {})})


def page(
    request: web.Request, template: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> web.Response:
    """A rendered page."""
    return web.Response(text=render(request, template, context), content_type="text/html", status=status)


def refused(
    request: web.Request, message: str, *, status: int = 403, title: str = "无权操作"
) -> web.Response:
    """A Chinese refusal page (403 by default)."""
    return page(request, "refused.html", {"title": title, "message": message}, status=status)


class Refused(Exception):
    """A role refusal raised by a page: answered with the 403 page and the message."""

    def __init__(self, message: str, *, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


def require(request: web.Request, role: Role, what: str) -> Viewer:
    """The viewer, when they have ``role``; else ``Refused`` naming what needed it."""
    viewer = viewer_of(request)
    if not viewer.at_least(role):
        raise Refused(f"{what}需要「{role.label}」及以上权限，您当前是「{viewer.caller.role.label}」。")
    return viewer


def redirect(location: str) -> web.Response:
    """A 302 to ``location`` that can still carry cookies (see other: after a form's POST)."""
    return web.Response(status=302, headers={"Location": location})


def _csrf_sent(request: web.Request, form: Any) -> str:
    return str(request.headers.get("X-CSRF-Token") or request.query.get("csrf") or form.get("csrf") or "")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def console_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A session for everything but the sign-in pages; a CSRF token with every state-changing request."""
    route = request.match_info.route.name
    if route in PUBLIC_ROUTES:
        return await handler(request)
    service = service_of(request)
    session = await service.session(request.cookies.get(COOKIE))
    if session is None:
        raise web.HTTPFound("/console/signin")
    caller, name = await service.viewer(session.user_id)
    request[VIEWER] = Viewer(caller=caller, csrf=session.csrf, name=name)
    if request.method not in SAFE_METHODS:
        form: Any = {}
        if request.content_type == "application/x-www-form-urlencoded":
            form = await request.post()
        if not hmac.compare_digest(_csrf_sent(request, form).encode(), session.csrf.encode()):
            log.warning("console request without a valid CSRF token from %s", session.user_id)
            return refused(request, "请求缺少有效的安全校验（CSRF），请刷新页面后重试。", title="请求被拒绝")
    try:
        return await handler(request)
    except Refused as exc:
        return refused(request, str(exc), status=exc.status)


async def handle_login(request: web.Request) -> web.StreamResponse:
    """``GET /console/login?token=…``: redeem a one-time link, set the session cookie, go to the overview."""
    service = service_of(request)
    try:
        opened = await service.redeem(request.query.get("token", ""))
    except SignInRefused as exc:
        return refused(request, f"{exc}{SIGN_IN_HINT}。", title="无法登录")
    response = redirect("/console/")
    response.set_cookie(
        COOKIE,
        opened.cookie,
        path="/console",
        httponly=True,
        samesite="Lax",
        secure=service.secure_cookies,
    )
    return response


async def handle_signin(request: web.Request) -> web.Response:
    """``GET /console/signin``: how to get a sign-in link."""
    return page(request, "signin.html", {"message": SIGN_IN_HINT}, status=401)


async def handle_logout(request: web.Request) -> web.StreamResponse:
    """``POST /console/logout``: end the session."""
    await service_of(request).sign_out(request.cookies.get(COOKIE))
    response = redirect("/console/signin")
    response.del_cookie(COOKIE, path="/console")
    return response


def add_sign_in_routes(console: web.Application) -> None:
    """The sign-in pages."""
    console.router.add_get("/login", handle_login, name="console-login")
    console.router.add_get("/signin", handle_signin, name="console-signin")
    console.router.add_post("/logout", handle_logout, name="console-logout")
