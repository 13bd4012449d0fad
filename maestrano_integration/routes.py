"""One URLconf for everything the platform calls, at the paths each preset announces.

A preset's metadata announces where the platform sends users and webhooks
(``sso.init_path``, ``sso.consume_path``, ``webhook.account.groups_path``, ...).
The apps register the views behind those keys here (in ``AppConfig.ready()``:
``maestrano_accounts`` the SSO views and account webhooks, ``maestrano_sync`` the
notifications), and
:mod:`maestrano_integration.urls` serves them, so a project adds one include and
every announced path of every preset answers. Paths are matched against the
presets of the current settings on each request, so a changed preset (a test's
``settings`` fixture included) is served at once.

This module imports no other app: the layers stay ``maestrano_integration`` ←
``maestrano_accounts`` ← ``maestrano_sync``.
"""

from __future__ import annotations

import functools
import inspect
import re
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.shortcuts import resolve_url
from django.urls import (
    URLPattern,
    URLResolver,
    get_resolver,
    get_script_prefix,
    get_urlconf,
    include,
    path,
    resolve,
)
from django.urls.exceptions import Resolver404
from django.urls.resolvers import RegexPattern, ResolverMatch

from .conf import Preset, all_presets, maestrano_settings, routed_presets
from .metrics import record_platform_request
from .setting_types import InvalidSettingType

#: ``:name`` placeholders of the announced paths (``/account/groups/:id``).
_PLACEHOLDER = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class PresetEndpoint:
    """A view served at the path ``path_of(preset)`` of every preset.

    ``placeholders`` renames the path's ``:name`` placeholders into the view's
    keyword arguments (``{"id": "group_id"}``); the view also gets ``preset``
    (the preset's name).
    """

    name: str
    view: Callable[..., Any]
    path_of: Callable[[Preset], str]
    placeholders: dict[str, str] = field(default_factory=dict)


def compile_announced_path(announced: str, placeholders: dict[str, str]) -> re.Pattern[str]:
    """``/maestrano/account/groups/:id`` → a regex of the path as Django resolves it.

    Literal parts are escaped; each placeholder matches one path segment.
    """
    pattern = ""
    position = 0
    stripped = announced.lstrip("/")
    for match in _PLACEHOLDER.finditer(stripped):
        pattern += re.escape(stripped[position : match.start()])
        kwarg = placeholders.get(match.group(1), match.group(1))
        pattern += f"(?P<{kwarg}>[^/]+)"
        position = match.end()
    pattern += re.escape(stripped[position:])
    return re.compile(pattern)


def instrumented(view: Callable[..., Any], *, endpoint: str) -> Callable[..., Any]:
    """``view`` counted and timed in ``maestrano_platform_requests_total`` as ``endpoint``.

    Every platform-facing view is served from this registry, so wrapping here
    measures them all without a middleware. ``functools.wraps`` keeps the view's
    markers (``csrf_exempt``, session-check exemption).
    """

    @functools.wraps(view)
    def wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        status = 500
        try:
            response = view(request, *args, **kwargs)
            status = response.status_code
            return response
        finally:
            record_platform_request(
                preset=str(kwargs.get("preset") or ""),
                endpoint=endpoint,
                status=status,
                duration_seconds=time.perf_counter() - started,
            )

    return wrapper


class PresetEndpointPattern(URLPattern):
    """A URL pattern that resolves an endpoint at the current presets' paths."""

    def __init__(self, endpoint: PresetEndpoint, *, namespace: str = "") -> None:
        # A pattern that never matches by itself: resolve() below does the work.
        view = instrumented(endpoint.view, endpoint=f"{namespace}:{endpoint.name}")
        super().__init__(RegexPattern(r"(?!)"), view, {}, None)
        self.endpoint = endpoint
        # (the presets object the routes were built from, the routes): holding the object
        # itself (not its id(), which a new object may reuse) detects a settings change.
        self._table: tuple[object, list[tuple[re.Pattern[str], str]]] | None = None

    def __repr__(self) -> str:
        return f"<PresetEndpointPattern {self.endpoint.name}>"

    def _routes(self) -> list[tuple[re.Pattern[str], str]]:
        try:
            presets: object = maestrano_settings.presets
        except InvalidSettingType:  # PRESETS unreadable (maestrano.E039): not kept
            presets = None
        if presets is None or self._table is None or self._table[0] is not presets:
            # An unusable preset is routed too (its stand-in's paths): its view answers
            # "misconfigured", and a broken preset never breaks the project's URLconf.
            routes = [
                (
                    compile_announced_path(
                        self.endpoint.path_of(preset), self.endpoint.placeholders
                    ),
                    preset.name,
                )
                for preset in routed_presets()
            ]
            if presets is None:
                return routes
            self._table = (presets, routes)
        return self._table[1]

    def resolve(self, path: str) -> ResolverMatch | None:
        for regex, preset_name in self._routes():
            match = regex.fullmatch(path)
            if match is not None:
                captured = match.groupdict()
                return ResolverMatch(
                    self.callback,
                    (),
                    {**captured, "preset": preset_name},
                    self.endpoint.name,
                    route=regex.pattern,
                    captured_kwargs=captured,
                    extra_kwargs={"preset": preset_name},
                )
        return None


@dataclass
class _Namespace:
    endpoints: list[PresetEndpoint] = field(default_factory=list)
    routes: list[URLPattern | URLResolver] = field(default_factory=list)


_registry: dict[str, _Namespace] = {}


def register_preset_endpoint(
    *,
    namespace: str,
    name: str,
    view: Callable[..., Any],
    path_of: Callable[[Preset], str],
    placeholders: dict[str, str] | None = None,
) -> None:
    """Serve ``view`` at ``path_of(preset)`` for every preset (idempotent per name)."""
    entry = _registry.setdefault(namespace, _Namespace())
    entry.endpoints = [e for e in entry.endpoints if e.name != name]
    entry.endpoints.append(
        PresetEndpoint(name=name, view=view, path_of=path_of, placeholders=placeholders or {})
    )


def schema_urlpatterns(preset: Preset) -> list[URLPattern]:
    """The registered DRF views at ``preset``'s paths, as plain patterns for the OpenAPI
    generator (``/maestrano/account/groups/:id`` → ``.../groups/<group_id>``)."""
    patterns = []
    for entry in _registry.values():
        for endpoint in entry.endpoints:
            if not hasattr(endpoint.view, "cls"):  # not a DRF view (the SSO pages)
                continue
            route = _PLACEHOLDER.sub(
                functools.partial(_converter, placeholders=endpoint.placeholders),
                endpoint.path_of(preset).lstrip("/"),
            )
            patterns.append(path(route, endpoint.view, name=endpoint.name))
    return patterns


def _converter(match: re.Match[str], *, placeholders: dict[str, str]) -> str:
    """The Django route segment of a ``:name`` placeholder (``<group_id>``)."""
    return f"<{placeholders.get(match.group(1), match.group(1))}>"


def register_routes(*, namespace: str, routes: Sequence[URLPattern | URLResolver]) -> None:
    """Serve fixed ``routes`` (completion, logout...) in ``namespace`` beside the endpoints."""
    _registry.setdefault(namespace, _Namespace()).routes = list(routes)


def _instrumented_route(
    route: URLPattern | URLResolver, *, namespace: str
) -> URLPattern | URLResolver:
    if not isinstance(route, URLPattern):
        return route
    endpoint = f"{namespace}:{route.name or route.pattern}"
    return URLPattern(
        route.pattern,
        instrumented(route.callback, endpoint=endpoint),
        route.default_args,
        route.name,
    )


def registered_urlpatterns() -> list[URLResolver]:
    """One include per registered namespace: fixed routes first, then the preset endpoints."""
    return [
        path(
            "",
            include(
                (
                    [
                        *(_instrumented_route(r, namespace=namespace) for r in entry.routes),
                        *(PresetEndpointPattern(e, namespace=namespace) for e in entry.endpoints),
                    ],
                    namespace,
                ),
            ),
        )
        for namespace, entry in _registry.items()
    ]


@dataclass(frozen=True)
class UnservedPath:
    """An announced path that the current URLconf does not lead to its view."""

    preset: str
    endpoint: str  # "namespace:name"
    announced: str
    served_by: str | None  # the view that answers it instead, or None (a 404)


def unserved_announced_paths() -> list[UnservedPath]:
    """Every path a preset announces that the URLconf does not serve with its view.

    The platform calls exactly the announced paths (``sso.consume_path``...): the
    include mounted under a prefix (``path("platform/", include(...))``) or a pattern
    of the project that answers the same path first leaves the platform a 404, or
    another view. Placeholders (``:id``) are filled with a sample segment.
    """
    unserved = []
    for namespace, entry in _registry.items():
        for endpoint in entry.endpoints:
            for preset in all_presets():
                announced = endpoint.path_of(preset)
                sample = _PLACEHOLDER.sub("maestrano-check", announced)
                try:
                    found: Callable[..., Any] | None = resolve(sample).func
                except Resolver404:
                    found = None
                if found is not None and inspect.unwrap(found) is inspect.unwrap(endpoint.view):
                    continue
                unserved.append(
                    UnservedPath(
                        preset=preset.name,
                        endpoint=f"{namespace}:{endpoint.name}",
                        announced=announced,
                        served_by=None
                        if found is None
                        else f"{found.__module__}.{getattr(found, '__qualname__', found)}",
                    )
                )
    return unserved


# --- links the SSO views give on every login ----------------------------------------------

#: ``resolve_url`` results by URL configuration (its resolver: a new one after
#: ``clear_url_caches()``, as a changed ``ROOT_URLCONF`` brings), then by (script prefix, to).
_kept_urls: weakref.WeakKeyDictionary[URLResolver, dict[tuple[str, str], str]] = (
    weakref.WeakKeyDictionary()
)
_MAX_KEPT_URLS = 64


def kept_resolve_url(to: str) -> str:
    """Django's ``resolve_url(to)`` (a URL name, a path or a URL), kept per URL
    configuration and script prefix: its ``reverse()`` costs a login more than a
    twentieth of a millisecond each time, for the same answer (docs/performance.md).
    A name that reverses to nothing raises ``NoReverseMatch``, as ``resolve_url`` does,
    and is not kept."""
    resolver = get_resolver(get_urlconf())
    key = (get_script_prefix(), to)
    kept = _kept_urls.get(resolver)
    if kept is None:
        kept = _kept_urls.setdefault(resolver, {})
    url = kept.get(key)
    if url is None:
        url = resolve_url(to)
        if len(kept) >= _MAX_KEPT_URLS:
            kept.clear()
        kept[key] = url
    return url


# --- the project's root: the script prefix -------------------------------------------


def served_path(announced: str) -> str:
    """``announced`` (a path a preset announces, ``/maestrano/auth/saml/init``) as a link
    of this project's pages reaches it: behind the script prefix the project is served
    under (the WSGI server's ``SCRIPT_NAME``, or ``FORCE_SCRIPT_NAME``), as ``reverse()``
    gives its paths. The announced path itself is the one Django resolves, after it."""
    return get_script_prefix() + announced.lstrip("/")


def resolved_path(served: str) -> str:
    """``served`` (a path as ``reverse()`` gives it, behind the script prefix) as Django
    resolves it: the path after the prefix (``resolve()`` takes that)."""
    prefix = get_script_prefix()
    return "/" + served.removeprefix(prefix) if served.startswith(prefix) else served


@dataclass(frozen=True)
class RootOutsidePrefix:
    """A URL a preset tells the platform to call the project at (``app.host``, or
    ``sso.idm``) whose path is not the script prefix the project is served under."""

    preset: Preset
    key: str  # "app.host" or "sso.idm"
    url: str
    script_prefix: str

    @property
    def expected(self) -> str:
        """``url`` with the script prefix as its path: the project's root."""
        parts = urlsplit(self.url)
        return urlunsplit((parts.scheme, parts.netloc, self.script_prefix.rstrip("/"), "", ""))

    def describe(self) -> str:
        """The problem in a sentence, with a URL the platform would call in vain."""
        logins_here = self.key == "sso.idm" or not self.preset.raw_value("sso.idm")
        called = self.url.rstrip("/") + (
            self.preset.consume_path if logins_here else self.preset.groups_path
        )
        return (
            f"Maestrano preset {self.preset.name!r}: {self.key} {self.url!r} is outside the "
            f"script prefix {self.script_prefix!r} this project is served under: the platform "
            f"would call {called}, which does not reach the project."
        )


def roots_outside_script_prefix(
    *, script_prefix: str, presets: Iterable[Preset]
) -> list[RootOutsidePrefix]:
    """The ``app.host`` (and ``sso.idm``, when set) of ``presets`` that do not name the
    project's root under ``script_prefix`` (``/app/``): the metadata announces ``app.host``
    + path, and the platform calls exactly that, so that URL's path must be the prefix.
    None under the root prefix (``/``): a host with a path may then be a proxy's own
    prefix, which it takes off."""
    if script_prefix.strip("/") == "":
        return []
    root = "/" + script_prefix.strip("/")
    script_prefix = f"{root}/"  # as get_script_prefix() has it
    found = []
    for preset in presets:
        for key in ("app.host", "sso.idm"):
            url = preset.app_host if key == "app.host" else preset.raw_value(key)
            if url and urlsplit(str(url)).path.rstrip("/") != root:
                found.append(
                    RootOutsidePrefix(
                        preset=preset, key=key, url=str(url), script_prefix=script_prefix
                    )
                )
    return found
