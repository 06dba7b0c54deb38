"""build_app: the Starlette application, wiring the pipeline stages in order.

    1. route     the path becomes a ModuleRequest or SumdbRequest (400/404 otherwise)
    2. identify  Authorization → Identity (anonymous, or 401 for bad credentials)
    3. decide    policy input → OPA → Decision; refused → 401 (anonymous) or 403
    4. record    the decision is committed to the audit store before any byte is served
    5. forward   to the upstream list the decision routes to (private never goes public)
    6. complete  status, bytes and sha256 of what was served are added to the record

Revision queries (``.info`` of ``master``) and ``@latest`` are resolved upstream between
3 and 4, and the policy is asked again about the canonical version before anything is
recorded as allowed or served.
"""

import hashlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from .audit.database import open_engine
from .audit.sink import open_sink
from .audit.tokens import SqlTokenStore
from .audit.writer import AuditWriter
from .errors import (
    AuditError,
    GatewayError,
    IdentityError,
    MethodNotAllowedError,
    PrivateLeakError,
    UpstreamError,
)
from .goproxy import semver
from .goproxy.paths import check_path_major
from .goproxy.requests import (
    ModuleRequest,
    SumdbRequest,
    parse_module_request,
    parse_sumdb_request,
)
from .http.delivery import Delivery, StreamedDelivery
from .identity.base import Identifier
from .identity.identify import identify
from .identity.tokens import TokenIdentifier
from .observability import Metrics
from .policy.engine import PolicyEngine
from .policy.input import policy_input
from .policy.opa import OpaPolicyEngine
from .policy.supervisor import SupervisedOpa, find_opa
from .responses import TEXT_PLAIN, denial_lines, text_body, text_response
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
    policy: PolicyEngine
    audit: AuditWriter
    forwarder: Forwarder
    engine: AsyncEngine
    sumdb_names: frozenset[str]
    metrics: Metrics

    def route(self, path: str) -> tuple[ModuleRequest | SumdbRequest, str]:
        """Stage 1: the typed request and the path to ask an upstream for."""
        if path.startswith(SUMDB_PREFIX):
            sumdb, tail = parse_sumdb_request(path, self.sumdb_names)
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
    """The canonical version an upstream resolved a query or @latest to."""
    try:
        info: Any = json.loads(reply.body or b"")
        version = info["Version"]
    except (ValueError, TypeError, KeyError) as exc:
        raise UpstreamError(f"upstream {reply.upstream} sent unreadable version info") from exc
    if not isinstance(version, str) or not semver.is_canonical(version):
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
        reply.chunks(), headers, max_bytes=gw.settings.upstream.max_zip_bytes, on_end=ended
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
    if not trail.recorded:
        try:
            await trail.refuse(gw.audit, tuple(reasons), code, status)
        except AuditError as exc:
            log.error("refusal %s not audited: %s", trail.request_id, exc.reason)
    response = text_response(status, lines, trail.request_id, challenge=challenge)
    body = bytes(response.body)  # exactly what is sent, built once
    trail.complete(gw.audit, status, len(body), hashlib.sha256(body).hexdigest(), code)
    return response


async def _denied(gw: Gateway, trail: RequestTrail) -> Response:
    decision = trail.decision
    reasons = list(decision.reasons) if decision else ["denied"]
    if not trail.identity.authenticated:
        return await _refusal(gw, trail, 401, reasons, "authentication_required", challenge=True)
    return await _refusal(gw, trail, 403, reasons, "denied_by_policy", lines=denial_lines(reasons))


async def _serve(gw: Gateway, request: Request, trail: RequestTrail) -> Response:
    if request.method != "GET":  # Starlette adds HEAD to GET routes; the protocol is GET only
        raise MethodNotAllowedError(f"{request.method} is not part of the module proxy protocol")
    target, upstream_path = gw.route(trail.path)
    trail.target = target
    trail.identity = await identify(request.headers.get("authorization"), gw.identifiers)
    await gw.decide(trail)
    if trail.decision is None or not trail.decision.allowed:
        return await _denied(gw, trail)
    bases = gw.upstreams_for(target, trail.decision.route)

    if isinstance(target, ModuleRequest) and (target.version_is_query or target.kind == "latest"):
        reply = await gw.forwarder.fetch(bases, upstream_path, stream=False)
        trail.upstream = reply.upstream
        if reply.status == 200:
            trail.resolved_version = _resolved_version(reply, target)
            await gw.decide(trail)
            if not trail.decision.allowed:
                return await _denied(gw, trail)
        await trail.allow(gw.audit)
        return _buffered(gw, trail, reply)

    await trail.allow(gw.audit)
    reply = await gw.forwarder.fetch(bases, upstream_path, stream=target.kind == "zip")
    trail.upstream = reply.upstream
    if reply.body is None:
        return _streamed(gw, trail, reply)
    return _buffered(gw, trail, reply)


async def proxy_endpoint(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    client = request.client.host if request.client else ""
    trail = RequestTrail(uuid4().hex, request.scope["path"], client)
    try:
        return await _serve(gw, request, trail)
    except GatewayError as exc:
        challenge = isinstance(exc, IdentityError) and exc.status == 401
        return await _refusal(gw, trail, exc.status, [exc.reason], exc.code, challenge=challenge)
    except Exception:  # a bug is still a refusal, recorded, never a pass
        log.exception("request %s failed unexpectedly", trail.request_id)
        reason = f"internal error in modgate (request id {trail.request_id})"
        return await _refusal(gw, trail, 500, [reason], "internal_error")


async def healthz(_request: Request) -> Response:
    return PlainTextResponse("ok\n")


async def readyz(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    problems = []
    if not await gw.policy.healthy():
        problems.append("policy engine not healthy")
    try:
        async with gw.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:  # any failure: the store cannot take records
        problems.append("audit store unreachable")
    upstreams = gw.settings.upstream
    for name, bases in (("public", upstreams.public), ("private", upstreams.private)):
        if bases and not await gw.forwarder.reachable(bases):
            problems.append(f"no {name} upstream reachable")
    if problems:
        return Response(text_body(problems), status_code=503, media_type=TEXT_PLAIN)
    return PlainTextResponse("ready\n")


def build_app(settings: Settings, metrics: Metrics | None = None) -> Starlette:
    """The application for ``settings``; its lifespan opens and closes every resource.

    ``metrics`` is shared with the HTTP server (``server.py``) when it counts too."""
    metrics = Metrics() if metrics is None else metrics

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            engine = open_engine(settings.audit.database_url)
            stack.push_async_callback(engine.dispose)
            sink = open_sink(settings.audit.database_url, engine)
            writer = await stack.enter_async_context(AuditWriter(sink))
            opa_url = settings.policy.opa_url
            if not opa_url:
                binary = find_opa(settings.policy.opa_binary)
                supervised = SupervisedOpa(binary, Path(settings.policy.policies_dir))
                opa_url = (await stack.enter_async_context(supervised)).url
            policy = await stack.enter_async_context(
                OpaPolicyEngine(
                    opa_url,
                    settings.policy.decision_path,
                    settings.policy.timeout_s,
                    settings.policy.retries,
                )
            )
            session = await stack.enter_async_context(
                aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=256), auto_decompress=False
                )
            )
            tokens = TokenIdentifier(SqlTokenStore(engine), settings.identity.token_cache_s)
            app.state.gateway = Gateway(
                settings=settings,
                identifiers=(tokens,),
                policy=policy,
                audit=writer,
                forwarder=Forwarder(
                    session, settings.upstream.connect_timeout_s, settings.upstream.read_timeout_s
                ),
                engine=engine,
                sumdb_names=frozenset(settings.sumdb.databases),
                metrics=metrics,
            )
            yield

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/{path:path}", proxy_endpoint, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
