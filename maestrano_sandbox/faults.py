"""Fault injection: the sandbox misbehaves on purpose so an app's retries can be tested.

Applies to calls carrying the basic auth of a registered app that has faults
configured, on the platform APIs an app calls: Connec! (``connec/api/...``,
``connec/batch``), the Account API (``api/v1/account/...``) and the session
check (``api/v1/auth/saml/<uid>``). Pages and the IdP are never affected.

Configuration per app, ``settings.MAESTRANO_SANDBOX["FAULTS"][api_id]`` first, else the
app's :class:`~maestrano_sandbox.models.FaultConfig` row (UI, admin, ``manage.py
sandbox_faults``)::

    {"error_rate": 0.3, "rate_limit_rate": 0.1, "retry_after": 1,
     "latency_ms": 50, "drop_rate": 0.05, "gateway_timeout_rate": 0.05, "error_status": 503,
     "seed": 42, "scope": "all"}

Each call draws one number in [0, 1): below ``drop_rate`` the connection is
dropped, then ``error_rate`` answers a 5xx (``error_status``, else one of
500, 502, 503 and 504 drawn; nothing is applied), then ``rate_limit_rate`` a 429 with
``Retry-After``, then ``gateway_timeout_rate`` applies the call and answers 504 in
its place (a gateway that gave up waiting: the app cannot know the call was
applied); the rest pass. ``error_detail`` (settings only) is the text of an injected
error, in the area's own error body (the Account API's ``errors.base``, Connec!'s
``errors[].detail``, the session check's ``error``), in place of "Injected fault: ...":
a platform answering a huge, multi-line text, or echoing the credentials it was sent.
``foreign_group_rate`` (settings only) answers records of Connec! GETs that pass (a page,
one record) as another group's: each record, drawn on its own, has its ``group_id``
replaced by :data:`FOREIGN_GROUP` (a hub mixing up its groups, which our credentials all
open); the records so answered are logged, their ids in ``extra["records"]``.
``latency_ms`` delays every call. With a
``seed`` the draw of the n-th call of an app is a pure function of (seed, n),
so a run is reproducible; the counter restarts whenever the app's configuration
changes (saving it, even unchanged, restarts it), and is kept per process.

Holding calls (tests): ``with faults.holding(api_id) as gate:`` holds each of the
app's Account API calls (``area="connec"`` or ``"session"`` for the others) where it
arrived, before anything else is done with it, until ``gate.open()`` or the end of
the block; ``gate.wait_for_call()`` waits for the first one. A test thereby sees
an app's state while its call is in flight, however slow the machine, where a
latency only makes that likely. The gate lives in the process that serves the
sandbox (a live server's test process), so it is no setting and has no page.

Dropping a connection: under Django's development server and the test live
server the socket is shut down before any byte of a response is written, so
the client sees "connection closed without response" (what a crashed proxy
gives). Where no socket is reachable (the Django test client, other servers)
:class:`ConnectionDropped` is raised instead: the test client re-raises it,
a production server would turn it into a 500.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import NoReverseMatch, reverse

from .auth import authenticate_app
from .models import FaultConfig, RegisteredApp

logger = logging.getLogger(__name__)

AREAS = {
    "connec": re.compile(r"^(?:connec/)?(?:api/v2/|batch$)"),
    "account": re.compile(r"^api/v1/account/"),
    "session": re.compile(r"^api/v1/auth/saml/[^/]+/?$"),
}
SCOPE_AREAS = {
    FaultConfig.SCOPE_ALL: {"connec", "account", "session"},
    FaultConfig.SCOPE_CONNEC: {"connec"},
    FaultConfig.SCOPE_ACCOUNT: {"account", "session"},
}
ERROR_STATUSES = (500, 502, 503, 504)

PASS, DROP, ERROR, RATE_LIMIT = "pass", "drop", "error", "rate_limit"
#: The ``group_id`` of a record the ``foreign_group_rate`` fault answers as another group's.
FOREIGN_GROUP = "cld-another-group"
GATEWAY_TIMEOUT = "gateway_timeout"


class ConnectionDropped(ConnectionError):
    """An injected dropped connection, where the socket itself cannot be closed."""


@dataclass(frozen=True)
class FaultPlan:
    error_rate: float = 0.0
    error_status: int | None = None
    rate_limit_rate: float = 0.0
    retry_after: int = 1
    latency_ms: int = 0
    drop_rate: float = 0.0
    gateway_timeout_rate: float = 0.0
    seed: int | None = None
    scope: str = FaultConfig.SCOPE_ALL
    enabled: bool = True
    #: The text of an injected error's body ("": the fault's own words); settings only.
    error_detail: str = ""
    #: The share of the records of a Connec! GET answered as another group's; settings only.
    foreign_group_rate: float = 0.0

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> FaultPlan:
        known = {k: values[k] for k in cls.__dataclass_fields__ if k in values}
        return cls(**known)

    @classmethod
    def from_model(cls, config: FaultConfig) -> FaultPlan:
        return cls(
            error_rate=config.error_rate,
            error_status=config.error_status,
            rate_limit_rate=config.rate_limit_rate,
            retry_after=config.retry_after,
            latency_ms=config.latency_ms,
            drop_rate=config.drop_rate,
            gateway_timeout_rate=config.gateway_timeout_rate,
            seed=config.seed,
            scope=config.scope,
            enabled=config.enabled,
        )

    def covers(self, area: str) -> bool:
        return self.enabled and area in SCOPE_AREAS.get(self.scope, set())

    def decide(self, draw: float) -> str:
        threshold = 0.0
        for outcome, rate in (
            (DROP, self.drop_rate),
            (ERROR, self.error_rate),
            (RATE_LIMIT, self.rate_limit_rate),
            # Last: the draws of the other outcomes stay as they were without it.
            (GATEWAY_TIMEOUT, self.gateway_timeout_rate),
        ):
            threshold += max(rate, 0.0)
            if draw < threshold:
                return outcome
        return PASS


def validate_rates(
    *,
    error_rate: float,
    rate_limit_rate: float,
    drop_rate: float,
    gateway_timeout_rate: float = 0.0,
) -> None:
    """Raise ``ValueError`` unless each rate is in [0, 1] and they add up to at most 1."""
    rates = {
        "error_rate": error_rate,
        "rate_limit_rate": rate_limit_rate,
        "drop_rate": drop_rate,
        "gateway_timeout_rate": gateway_timeout_rate,
    }
    for name, rate in rates.items():
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, got {rate}")
    if sum(rates.values()) > 1.0 + 1e-9:
        raise ValueError(" + ".join(rates) + " must not exceed 1")


class DrawSequence:
    """Per (app, configuration) call counters: the n-th draw of a seeded plan is fixed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, str], Callable[[], int]] = {}

    def next_draw(self, *, api_id: str, signature: str, seed: int | None) -> tuple[int, float]:
        with self._lock:
            counter = self._counters.get((api_id, signature))
            if counter is None:
                # A new configuration starts a new sequence (and forgets the old ones).
                self._counters = {k: v for k, v in self._counters.items() if k[0] != api_id}
                counter = self._counters[(api_id, signature)] = itertools.count().__next__
            call_number = counter()
        if seed is None:
            return call_number, random.SystemRandom().random()
        return call_number, random.Random(f"{seed}:{call_number}").random()  # noqa: S311

    def reset(self) -> None:
        with self._lock:
            self._counters.clear()


draws = DrawSequence()


class CallGate:
    """Where the calls of one app to one area wait until the test opens the gate."""

    def __init__(self, *, timeout: float) -> None:
        self.timeout = timeout
        self._opened = threading.Event()
        self._arrived = threading.Condition()
        self.calls: list[str] = []

    def hold(self, request: HttpRequest) -> None:
        """Record the call (``"POST /sandbox/api/v1/account/bills"``) and wait for the gate.

        A gate nobody opens lets the call through after ``timeout`` seconds, so a failed
        test never leaves a server thread waiting for good.
        """
        with self._arrived:
            self.calls.append(f"{request.method} {request.path}")
            self._arrived.notify_all()
        if not self._opened.wait(self.timeout):
            logger.warning(
                "Held call let through after %s s: the gate was never opened", self.timeout
            )

    def wait_for_call(self, timeout: float) -> str:
        """The first call held, once it has arrived; ``TimeoutError`` after ``timeout`` seconds."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: self.calls, timeout):
                raise TimeoutError(f"No call reached the gate within {timeout} s")
            return self.calls[0]

    def open(self) -> None:
        self._opened.set()


class CallHolds:
    """The gates in place, per (api id, area), in the process serving the sandbox."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gates: dict[tuple[str, str], CallGate] = {}

    @contextlib.contextmanager
    def holding(
        self, api_id: str, *, area: str = "account", timeout: float = 30.0
    ) -> Iterator[CallGate]:
        """Hold the app's calls to ``area`` for the block; its end opens the gate."""
        if area not in AREAS:
            raise ValueError(f"Unknown area {area!r}; use one of {', '.join(AREAS)}")
        gate = CallGate(timeout=timeout)
        with self._lock:
            self._gates[(api_id, area)] = gate
        try:
            yield gate
        finally:
            with self._lock:
                self._gates.pop((api_id, area), None)
            gate.open()

    def gate_for(self, api_id: str, area: str) -> CallGate | None:
        with self._lock:
            return self._gates.get((api_id, area))


holds = CallHolds()
holding = holds.holding


def plan_for(app: RegisteredApp) -> tuple[FaultPlan, str] | None:
    """The app's fault plan and a signature of its configuration, or ``None``."""
    configured = getattr(settings, "MAESTRANO_SANDBOX", {}).get("FAULTS", {}).get(app.api_id)
    if configured:
        plan = FaultPlan.from_mapping(configured)
        return plan, "settings:" + json.dumps(asdict(plan), sort_keys=True)
    try:
        config = app.fault_config  # fetched with the app by maestrano_sandbox.auth
    except FaultConfig.DoesNotExist:
        return None
    return FaultPlan.from_model(config), f"db:{config.pk}:{config.updated_at.isoformat()}"


def fault_area(path: str) -> str | None:
    try:
        prefix = reverse("maestrano_sandbox:home")
    except NoReverseMatch:
        return None
    if not path.startswith(prefix):
        return None
    relative = path[len(prefix) :]
    return next((area for area, pattern in AREAS.items() if pattern.match(relative)), None)


def find_client_socket(request: HttpRequest) -> socket.socket | None:
    """The client's socket under wsgiref-based servers (runserver, live server), if reachable."""
    stream: Any = request.META.get("wsgi.input")
    for _ in range(6):
        if stream is None:
            return None
        if isinstance(stream, socket.socket):
            return stream
        sock = getattr(stream, "_sock", None)
        if isinstance(sock, socket.socket):
            return sock
        # Django's LimitedStream keeps only the bound ``read`` of the stream it wraps.
        read = getattr(stream, "_read", None)
        stream = getattr(read, "__self__", None) or next(
            (getattr(stream, a) for a in ("stream", "raw", "rfile") if hasattr(stream, a)), None
        )
    return None


def drop_connection(request: HttpRequest) -> HttpResponse:
    client = find_client_socket(request)
    if client is None:
        raise ConnectionDropped("Injected fault: connection dropped")
    with contextlib.suppress(OSError):
        client.shutdown(socket.SHUT_RDWR)
    # Never reaches the client; the server's write fails quietly on the closed socket.
    response = HttpResponse(status=500)
    response["Connection"] = "close"
    return response


def fault_response(area: str, status: int, detail: str) -> JsonResponse:
    body: dict[str, Any]
    if area == "connec":
        from .connec.errors import Problem, error_body

        body = error_body(status, [Problem(detail)])
    elif area == "account":
        body = {"success": False, "errors": {"base": [detail]}, "data": None}
    else:
        body = {"error": detail}
    return JsonResponse(body, status=status)


def answer_as_another_group(
    response: HttpResponse, *, plan: FaultPlan, call_number: int, context: dict[str, Any]
) -> None:
    """Give a share (``plan.foreign_group_rate``) of the records of a Connec! answer the
    ``group_id`` :data:`FOREIGN_GROUP`, each record drawn on its own (reproducibly with a
    seed); logged with the ids of those records."""
    if response.status_code != 200:
        return
    try:
        body = json.loads(response.content)
    except ValueError:
        return
    if not isinstance(body, dict):
        return
    records = []
    for value in body.values():
        if isinstance(value, dict) and "group_id" in value:
            records.append(value)
        elif isinstance(value, list):
            records.extend(item for item in value if isinstance(item, dict) and "group_id" in item)
    rewritten = []
    for index, record in enumerate(records):
        if plan.seed is None:
            draw = random.SystemRandom().random()
        else:
            draw = random.Random(f"{plan.seed}:{call_number}:foreign:{index}").random()  # noqa: S311
        if draw < plan.foreign_group_rate:
            record["group_id"] = FOREIGN_GROUP
            rewritten.append(record.get("id"))
    if not rewritten:
        return
    response.content = json.dumps(body).encode()
    if response.has_header("Content-Length"):
        response["Content-Length"] = str(len(response.content))
    response["X-Sandbox-Fault"] = "foreign_group"
    logger.info(
        "Injected fault: %d records answered as group %s",
        len(rewritten),
        FOREIGN_GROUP,
        extra={**context, "fault": "foreign_group", "records": rewritten},
    )


class FaultInjectionMiddleware:
    """Inject the configured faults into the platform API calls of registered apps."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "HTTP_AUTHORIZATION" not in request.META:
            return self.get_response(request)
        area = fault_area(request.path)
        if area is None:
            return self.get_response(request)
        app = authenticate_app(request)
        if app is None:
            return self.get_response(request)
        gate = holds.gate_for(app.api_id, area)
        if gate is not None:
            gate.hold(request)  # then on as usual, configured faults included
        configured = plan_for(app)
        if configured is None or not configured[0].covers(area):
            return self.get_response(request)
        plan, signature = configured
        call_number, draw = draws.next_draw(api_id=app.api_id, signature=signature, seed=plan.seed)
        outcome = plan.decide(draw)
        if plan.latency_ms:
            time.sleep(plan.latency_ms / 1000)
        context = {"app": app.api_id, "area": area, "call": call_number, "fault": outcome}
        if outcome == DROP:
            logger.info("Injected fault: dropped connection", extra=context)
            return drop_connection(request)
        if outcome == ERROR:
            status = plan.error_status or random.Random(  # noqa: S311
                f"{plan.seed}:{call_number}:status"
            ).choice(ERROR_STATUSES)
            logger.info("Injected fault: %s", status, extra=context)
            response: HttpResponse = fault_response(
                area, status, plan.error_detail or f"Injected fault: server error {status}"
            )
            response["X-Sandbox-Fault"] = "error"
            return response
        if outcome == GATEWAY_TIMEOUT:
            self.get_response(request)  # applied, but its answer never reaches the app
            logger.info("Injected fault: 504 after applying the call", extra=context)
            response = fault_response(
                area, 504, "Injected fault: gateway timeout (the call may have been applied)"
            )
            response["X-Sandbox-Fault"] = "gateway_timeout"
            return response
        if outcome == RATE_LIMIT:
            logger.info("Injected fault: 429", extra=context)
            response = fault_response(area, 429, "Injected fault: rate limit exceeded")
            response["Retry-After"] = str(plan.retry_after)
            response["X-Sandbox-Fault"] = "rate_limit"
            return response
        response = self.get_response(request)
        if plan.latency_ms:
            response["X-Sandbox-Fault"] = "latency"
        if plan.foreign_group_rate and area == "connec" and request.method == "GET":
            answer_as_another_group(response, plan=plan, call_number=call_number, context=context)
        return response
