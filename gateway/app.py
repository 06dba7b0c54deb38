"""build_app: the Starlette application, wiring the pipeline stages in order.

    1. route     the path becomes a ModuleRequest or SumdbRequest (400/404 otherwise)
    2. identify  Authorization → Identity (anonymous, or 401 for bad credentials)
    3. decide    policy input → OPA → Decision; refused → 401 (anonymous) or 403
    4. record    the decision is committed to the audit store before any byte is served
    5. forward   to the upstream list the decision routes to (private never goes public)
    6. complete  status, bytes and sha256 of what was served are added to the record

Revision queries (``.info`` of ``master``) and ``@latest`` are recorded (4) before the
upstream resolves them, and the policy is asked again about the canonical version the
upstream named; that second decision is recorded before anything is served.

Every request that reaches the application gets exactly one audit record, whatever its
method or path: the proxy is the router's default, not a route whose pattern could miss.
Only /healthz, /readyz and /metrics (``operations.py``) are not proxy requests.
"""

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from uuid import uuid4

import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, request_response

from .audit.database import open_engine
from .audit.sink import open_sink
from .audit.tokens import SqlTokenStore
from .audit.writer import AuditWriter
from .errors import (
    AuditError,
    GatewayError,
    IdentityError,
    MethodNotAllowedError,
    NotFoundError,
    PolicyError,
    PrivateLeakError,
    SumdbNotServedError,
    TooManyFailuresError,
    UpstreamError,
)
from .goproxy import semver
from .goproxy.info import read_version
from .goproxy.paths import check_path_major
from .goproxy.requests import (
    ModuleRequest,
    SumdbRequest,
    decode_request_path,
    parse_module_request,
    parse_sumdb_request,
)
from .http.delivery import Delivery, StreamedDelivery
from .identity.base import Identifier
from .identity.identify import identify
from .identity.ratelimit import FailedAuthLimiter
from .identity.tokens import TokenIdentifier
from .logs import bind_request_id
from .observability import Metrics, TimedPolicy
from .operations import Check, Operations, Readiness, healthz, metrics_page, readyz
from .policy.engine import PolicyEngine
from .policy.input import policy_input
from .policy.opa import OpaPolicyEngine, remote_endpoint
from .policy.supervisor import SupervisedOpa, find_opa
from .responses import denial_lines, text_response
from .settings import Settings
from .trail import RequestTrail
from .types import Route as RouteName
from .upstream.forwarder import Forwarder, UpstreamReply

log = logging.getLogger(__name__)

SUMDB_PREFIX = "/sumdb/"


@dataclass(frozen=True, slots=True)
class Gateway:
    """Everything a request needs, opened once by the lifespan."""

    settings: Settings
    identifiers: tuple[Identifier, ...]
    auth_failures: FailedAuthLimiter
    policy: PolicyEngine
    audit: AuditWriter
    forwarder: Forwarder
    engine: AsyncEngine
    sumdb_names: frozenset[str]
    metrics: Metrics

    def route(self, path: str) -> tuple[ModuleRequest | SumdbRequest, str]:
        """Stage 1: the typed request and the path to ask an upstream for.

        A checksum database modgate does not serve is 403 by default, which the go command
        takes as final; 404 (``sumdb.unknown_status``) lets it ask that database directly."""
        if path.startswith(SUMDB_PREFIX):
            try:
                sumdb, tail = parse_sumdb_request(path, self.sumdb_names)
            except SumdbNotServedError as exc:
                if self.settings.sumdb.unknown_status == NotFoundError.status:
                    raise NotFoundError(exc.reason) from exc
                raise
            return sumdb, sumdb.upstream_path(tail)
        target = parse_module_request(path)
        return target, target.upstream_path()

    async def decide(self, trail: RequestTrail) -> None:
        """Stage 3: ask the policy about the trail's request (again, once resolved)."""
        if trail.target is None:
            raise GatewayError("decide before route")
        trail.decision = await self.policy.decide(
            policy_input(
                trail.request_id,
                trail.target,
                trail.identity,
                trail.client_address,
                datetime.now(UTC),
                resolved_version=trail.resolved_version,
            )
        )

    def upstreams_for(
        self, target: ModuleRequest | SumdbRequest, route: RouteName
    ) -> tuple[str, ...]:
        """Stage 5's list. The checksum database is public by nature: a lookup the policy
        routed private is refused here too, whatever the policy allowed."""
        if route == "private":
            if isinstance(target, SumdbRequest):
                raise PrivateLeakError(
                    f"{target.module} is private: its checksum is never looked up in a public "
                    "checksum database; add its path to GONOSUMDB"
                )
            if not self.settings.upstream.private:
                raise UpstreamError(f"{target.module} is private and no private upstream is set")
            return self.settings.upstream.private
        return self.settings.upstream.public


def _resolved_version(reply: UpstreamReply, target: ModuleRequest) -> str:
    """The canonical version an upstream resolved a query or @latest to, read as the go
    command reads it (goproxy/info.py): the policy judges the version the developer gets."""
    version = read_version(reply.body or b"", reply.upstream)
    if not semver.is_canonical(version):
        raise UpstreamError(f"upstream {reply.upstream} resolved to a non-canonical version")
    if check_path_major(version, target.module) is not None:
        raise UpstreamError(f"upstream {reply.upstream} resolved to a version of another major")
    return version


def _passed_headers(trail: RequestTrail, reply: UpstreamReply) -> dict[str, str]:
    return {**reply.headers, "X-Request-Id": trail.request_id}


def _buffered(gw: Gateway, trail: RequestTrail, reply: UpstreamReply) -> Response:
    body = reply.body or b""
    trail.complete(gw.audit, reply.status, len(body), hashlib.sha256(body).hexdigest())
    headers = _passed_headers(trail, reply)
    media_type = headers.pop("Content-Type", None)
    return Response(body, status_code=reply.status, headers=headers, media_type=media_type)


def _streamed(gw: Gateway, trail: RequestTrail, reply: UpstreamReply) -> Response:
    """A zip, streamed; its completion records what reached the client (``Delivery``)."""
    headers = _passed_headers(trail, reply)
    headers.setdefault("Content-Type", "application/zip")
    if reply.size is not None:  # kept, so a client can tell a body cut short
        headers["Content-Length"] = str(reply.size)

    def ended(delivery: Delivery) -> None:
        reply.close()
        trail.complete(
            gw.audit, delivery.status, delivery.bytes, delivery.sha256, delivery.error_code
        )

    return StreamedDelivery(
        reply.chunks(),
        headers,
        max_bytes=gw.settings.upstream.max_zip_bytes,
        on_end=ended,
        send_timeout_s=gw.settings.server.send_timeout_s,
        deadline_s=gw.settings.upstream.zip_timeout_s,
    )


async def _refusal(
    gw: Gateway,
    trail: RequestTrail,
    status: int,
    reasons: list[str],
    code: str,
    *,
    lines: list[str] | None = None,
    challenge: bool = False,
) -> Response:
    """Answer a refusal: recorded (unless the allow record already is), then sent.

    ``reasons`` go to the audit record as given; ``lines`` (default: the reasons) are
    what the developer reads."""
    lines = reasons if lines is None else lines
    try:
        await trail.refuse(gw.audit, tuple(reasons), code, status)
    except AuditError as exc:
        gw.metrics.audit_unrecorded_refusals.inc()
        log.error("refusal %s (%d %s) not audited: %s", trail.request_id, status, code, exc.reason)
    gw.metrics.requests.inc(outcome="deny", code=code)
    response = text_response(status, lines, trail.request_id, challenge=challenge)
    body = bytes(response.body)  # exactly what is sent, built once
    digest = hashlib.sha256(body).hexdigest()
    trail.complete(gw.audit, status, len(body), digest, code, tuple(reasons))
    return response


async def _denied(gw: Gateway, trail: RequestTrail) -> Response:
    decision = trail.decision
    reasons = list(decision.reasons) if decision else ["denied"]
    if not trail.identity.authenticated:
        return await _refusal(gw, trail, 401, reasons, "authentication_required", challenge=True)
    return await _refusal(gw, trail, 403, reasons, "denied_by_policy", lines=denial_lines(reasons))


async def _serve(gw: Gateway, request: Request, trail: RequestTrail) -> Response:
    if request.method != "GET":  # the protocol is GET only (HEAD included)
        raise MethodNotAllowedError(f"{request.method} is not part of the module proxy protocol")
    target, upstream_path = gw.route(trail.path)
    trail.target = target
    try:  # every Authorization value: two are refused, never read first-wins
        trail.identity = await identify(
            request.headers.getlist("authorization"),
            trail.client_address,
            gw.identifiers,
            gw.auth_failures,
        )
    except TooManyFailuresError as exc:
        gw.metrics.auth_rate_limited.inc()
        response = await _refusal(gw, trail, exc.status, [exc.reason], exc.code)
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    await gw.decide(trail)
    if trail.decision is None or not trail.decision.allowed:
        return await _denied(gw, trail)
    bases = gw.upstreams_for(target, trail.decision.route)

    if isinstance(target, ModuleRequest) and (target.version_is_query or target.kind == "latest"):
        await trail.allow(gw.audit)  # 4. recorded before the upstream hears of it
        reply = await gw.forwarder.fetch(bases, upstream_path, stream=False)
        trail.upstream = reply.upstream
        if reply.status == 200:
            trail.resolved_version = _resolved_version(reply, target)
            await gw.decide(trail)
            if not trail.decision.allowed:
                return await _denied(gw, trail)
            await trail.allow(gw.audit)  # the resolved version's decision, durable first
        gw.metrics.requests.inc(outcome="allow", code="")
        return _buffered(gw, trail, reply)

    await trail.allow(gw.audit)
    reply = await gw.forwarder.fetch(bases, upstream_path, stream=target.kind == "zip")
    trail.upstream = reply.upstream
    gw.metrics.requests.inc(outcome="allow", code="")
    if reply.body is None:
        return _streamed(gw, trail, reply)
    return _buffered(gw, trail, reply)


async def proxy_endpoint(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    client = request.client.host if request.client else ""
    # Decoded once from the bytes sent; bytes that are not UTF-8 are kept for the route stage
    # to refuse and the audit record to show (escaped, audit/storable.py).
    trail = RequestTrail(uuid4().hex, decode_request_path(request.scope), client)
    trail.metrics = gw.metrics
    bind_request_id(trail.request_id)
    try:
        return await _serve(gw, request, trail)
    except GatewayError as exc:
        challenge = isinstance(exc, IdentityError) and exc.status == 401
        return await _refusal(gw, trail, exc.status, [exc.reason], exc.code, challenge=challenge)
    except Exception:  # a bug is still a refusal, recorded, never a pass
        log.exception("request %s failed unexpectedly", trail.request_id)
        reason = f"internal error in modgate (request id {trail.request_id})"
        return await _refusal(gw, trail, 500, [reason], "internal_error")


async def _db_reachable(engine: AsyncEngine, timeout_s: float) -> bool:
    async with asyncio.timeout(timeout_s), engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return True


async def _policy_data_ok(policy: OpaPolicyEngine) -> bool:
    """``config_ok`` beside the decision document: false when the policy data is malformed
    (every request is then refused). A policy that defines no such rule is not judged here,
    nor is an engine that cannot be asked (the health check reports that); decisions are."""
    package = policy.decision_path.rpartition("/")[0]
    try:
        return await policy.document(f"{package}/config_ok") is True
    except PolicyError:  # undefined (PolicyUndefinedError), or unreachable: not this check's
        return True


def _readiness_checks(gw: Gateway, policy: OpaPolicyEngine) -> list[Check]:
    upstreams = gw.settings.upstream
    checks: list[Check] = [
        ("policy engine not healthy", gw.policy.healthy),
        ("policy data malformed: run modgate policy check", partial(_policy_data_ok, policy)),
        ("audit store unreachable", partial(_db_reachable, gw.engine, gw.settings.audit.timeout_s)),
    ]
    for name, bases in (("public", upstreams.public), ("private", upstreams.private)):
        if bases:
            checks.append((f"no {name} upstream reachable", partial(gw.forwarder.reachable, bases)))
    return checks


async def _is_operator(request: Request) -> bool:
    """Whether the caller proves membership of ``server.operator_group``; bad or missing
    credentials are simply not an operator here (no 401 for a load balancer's probe)."""
    gw: Gateway = request.app.state.gateway
    client = request.client.host if request.client else ""
    try:  # bad credentials here are charged like anywhere else (no brute force via probes)
        identity = await identify(
            request.headers.getlist("authorization"), client, gw.identifiers, gw.auth_failures
        )
    except GatewayError:
        return False
    return gw.settings.server.operator_group in identity.groups


def build_app(settings: Settings, metrics: Metrics | None = None) -> Starlette:
    """The application for ``settings``; its lifespan opens and closes every resource.

    ``metrics`` is shared with the HTTP server (``server.py``) when it counts too."""
    metrics = Metrics() if metrics is None else metrics

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            audit = settings.audit
            engine = open_engine(audit.database_url, audit.timeout_s)
            stack.push_async_callback(engine.dispose)
            sink = open_sink(audit.database_url, engine, audit.timeout_s)
            writer = await stack.enter_async_context(
                AuditWriter(sink, timeout_s=audit.timeout_s, metrics=metrics)
            )
            metrics.gauge(
                "modgate_audit_queue_rows",
                "Audit rows waiting for the writer.",
                lambda: writer.queued,
            )
            supervised = None
            if settings.policy.opa_url:
                endpoint = remote_endpoint(settings.policy)
            else:  # our own OPA, on a private socket; it gets a new one when restarted
                supervised = await stack.enter_async_context(
                    SupervisedOpa(
                        find_opa(settings.policy.opa_binary), Path(settings.policy.policies_dir)
                    )
                )
                endpoint = supervised.endpoint
            policy = await stack.enter_async_context(
                OpaPolicyEngine(
                    endpoint,
                    settings.policy.decision_path,
                    settings.policy.timeout_s,
                    settings.policy.retries,
                )
            )
            if supervised is not None:
                supervised.on_restart(policy.follow)
            session = await stack.enter_async_context(
                aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=256), auto_decompress=False
                )
            )
            identity = settings.identity
            tokens = TokenIdentifier(
                SqlTokenStore(engine, audit.timeout_s),
                identity.token_cache_s,
                identity.negative_cache_s,
            )
            gateway = app.state.gateway = Gateway(
                settings=settings,
                identifiers=(tokens,),
                auth_failures=FailedAuthLimiter(identity.failed_auth_per_minute),
                policy=TimedPolicy(policy, metrics),
                audit=writer,
                forwarder=Forwarder(
                    session,
                    settings.upstream.connect_timeout_s,
                    settings.upstream.read_timeout_s,
                    total_timeout_s=settings.upstream.total_timeout_s,
                    zip_timeout_s=settings.upstream.zip_timeout_s,
                    metrics=metrics,
                ),
                engine=engine,
                sumdb_names=frozenset(settings.sumdb.databases),
                metrics=metrics,
            )
            app.state.operations = Operations(
                Readiness(_readiness_checks(gateway, policy), settings.upstream.probe_cache_s),
                metrics,
                _is_operator,
            )
            yield

    operator_routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_page, methods=["GET"]),
    ]
    app = Starlette(routes=operator_routes, lifespan=lifespan)
    # Every other request, whatever its method or path (a path holding %0a, which no route
    # pattern matches), is a proxy request and gets its audit record from proxy_endpoint.
    app.router.default = request_response(proxy_endpoint)
    app.router.redirect_slashes = False
    return app
