"""The route table: every route with its access, models and summary, enforced here and documented by OpenAPI.

Every route of the application goes through :class:`RouteTable` (JSON endpoints, pages, WebSockets, static
folders), so no route exists without a declared :class:`~hearing_server.auth.access.Access`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from hearing_server.api.call import Call
from hearing_server.api.errors import UnsupportedMediaType
from hearing_server.auth.access import PUBLIC, Access
from hearing_server.auth.staff import check_csrf, check_password_changed, current_session
from hearing_server.domain.errors import Forbidden, InvalidInput, NotAuthenticated
from hearing_server.store.models import StaffSession

Handler = Callable[..., Awaitable[Any]]
Guard = Callable[[web.Request, StaffSession], Awaitable[None]]
"""A check beyond the role, run before the handler (e.g. that the caller is the hearing's own staff)."""


@dataclass(frozen=True)
class Endpoint:
    """One route: method, path, who may call it, and its request and response models."""

    method: str
    path: str
    handler: Handler
    access: Access
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    raw: bool = False  # the handler takes the request and returns a response (pages, text, WebSockets)
    media_type: str = "application/json"
    openapi: bool = True
    no_store: bool = False  # the response carries a secret (CSRF token, a link): never kept in any cache
    before_password_change: bool = False  # callable while the user must still change a one-time password
    guard: Guard | None = None  # checked after the role (staff endpoints only)

    @property
    def key(self) -> tuple[str, str]:
        """(method, path), unique in a table."""
        return self.method, self.path

    @property
    def operation_id(self) -> str:
        """The handler's name, used as OpenAPI operationId."""
        return str(getattr(self.handler, "__name__", self.path))


def endpoint(
    method: str,
    path: str,
    *,
    access: Access,
    summary: str,
    tag: str,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    raw: bool = False,
    media_type: str = "application/json",
    openapi: bool = True,
    no_store: bool = False,
    before_password_change: bool = False,
    guard: Guard | None = None,
) -> Callable[[Handler], Endpoint]:
    """Declare a handler as an endpoint; ``access`` has no default, so no route is left unguarded."""

    def declare(handler: Handler) -> Endpoint:
        return Endpoint(
            method=method.upper(),
            path=path,
            handler=handler,
            access=access,
            summary=summary,
            tag=tag,
            body=body,
            query=query,
            response=response,
            status=status,
            raw=raw,
            media_type=media_type,
            openapi=openapi,
            no_store=no_store,
            before_password_change=before_password_change,
            guard=guard,
        )

    return declare


@dataclass(frozen=True)
class StaticFolder:
    """Files served as they are under a URL prefix (public)."""

    prefix: str
    directory: Path
    access: Access = PUBLIC


class RouteTable:
    """The application's routes; adding an endpoint registers it with the router at once."""

    def __init__(self, router: web.UrlDispatcher) -> None:
        self._router = router
        self._endpoints: dict[tuple[str, str], Endpoint] = {}
        self._static: list[StaticFolder] = []

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """Every endpoint, in the order added."""
        return tuple(self._endpoints.values())

    @property
    def static_folders(self) -> tuple[StaticFolder, ...]:
        """Every static folder."""
        return tuple(self._static)

    def add(self, *endpoints: Endpoint) -> None:
        """Serve ``endpoints``; a (method, path) may be declared once."""
        for ep in endpoints:
            if ep.key in self._endpoints:
                raise ValueError(f"route declared twice: {ep.method} {ep.path}")
            self._endpoints[ep.key] = ep
            self._router.add_route(ep.method, ep.path, _dispatcher(ep))

    def add_static(self, prefix: str, directory: Path) -> None:
        """Serve the files of ``directory`` under ``prefix`` (public)."""
        self._static.append(StaticFolder(prefix, directory))
        self._router.add_static(prefix, directory)

    def find(self, method: str, path: str) -> Endpoint | None:
        """The endpoint declared for ``method`` and ``path`` (the path template)."""
        return self._endpoints.get((method.upper(), path))


def _dispatcher(ep: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def dispatch(request: web.Request) -> web.StreamResponse:
        session = None
        if not ep.access.public:
            session = await current_session(request)
            if session is None:
                raise NotAuthenticated("log in first", code="not_authenticated")
            if not ep.access.allows(session.user.role):
                raise Forbidden(f"the {session.user.role} role may not do this", code="forbidden")
            check_csrf(request, session)
            if not ep.before_password_change:
                check_password_changed(session)
            if ep.guard is not None:
                await ep.guard(request, session)
        if ep.raw:
            response: web.StreamResponse = await ep.handler(request)
            return response
        call = Call(
            request=request,
            session=session,
            body=await _read_body(request, ep.body) if ep.body is not None else None,
            query=_read_query(request, ep.query) if ep.query is not None else None,
        )
        response = to_response(await ep.handler(call), ep.status)
        if ep.no_store:
            response.headers["Cache-Control"] = "no-store"
        return response

    dispatch.__name__ = getattr(ep.handler, "__name__", "dispatch")
    return dispatch


async def _read_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    raw = await request.read()  # over client_max_size: aiohttp raises 413, mapped to JSON by the middleware
    if not raw.strip():
        raw = b"{}"
    elif request.content_type != "application/json":
        # Also keeps cross-site HTML forms out: they cannot send application/json without CORS.
        raise UnsupportedMediaType("send the body as application/json", code="unsupported_media_type")
    return model.model_validate_json(raw)


def _read_query(request: web.Request, model: type[BaseModel]) -> BaseModel:
    names = [name for name, _ in request.query.items()]
    if len(names) != len(set(names)):
        raise InvalidInput("a query parameter is repeated", code="invalid_input")
    return model.model_validate(dict(request.query))


def to_response(result: Any, status: int = 200) -> web.StreamResponse:
    """A handler's result as a response: a model as JSON, ``None`` as 204, a response as it is."""
    if isinstance(result, web.StreamResponse):
        return result
    if result is None:
        return web.Response(status=204)
    if isinstance(result, BaseModel):
        return web.Response(text=result.model_dump_json(), status=status, content_type="application/json")
    raise TypeError(f"a handler returned {type(result).__name__}")


ROUTES = web.AppKey("routes", RouteTable)
