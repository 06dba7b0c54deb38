"""build_app: the Starlette application, wiring the pipeline stages in order.

    1. route     the path becomes a ModuleRequest or SumdbRequest (goproxy/; 400/404 otherwise)
    2. identify  the RequestProof → Identity (identity/; anonymous, or 401 for bad credentials)
    3. decide    PolicyInput → OPA → Decision (policy/); refused → 401 (anonymous) or 403
    4. record    the decision is committed to the audit store before any byte is served (trail)
    5. forward   to the upstream list the decision routes to (upstream/; private never public)
    6. complete  status, bytes and sha256 of what was served are added to the record (trail)

Revision queries (``.info`` of ``master``) and ``@latest`` are recorded (4) before the
upstream resolves them, and the policy is asked again about the canonical version the
upstream named; that second decision is recorded before anything is served.

Every request that reaches the application gets exactly one audit record, whatever its
method or path: the proxy is the router's default, not a route whose pattern could miss.
Only /healthz, /readyz, /metrics (``operations.py``) and /-/client-settings
(``client_settings.py``) are not proxy requests. This module
only wires: each stage is a package opened from its settings section by one ``open_*``, and
offers its own readiness checks.
"""

import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import uuid4

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, request_response

from .allowed_versions import hide_blocked_versions, newest_allowed_instead
from .audit.stage import AuditStage, open_audit
from .client_settings import PATH as CLIENT_SETTINGS_PATH
from .client_settings import client_settings
from .errors import (
    AuditError,
    GatewayError,
    IdentityError,
    MethodNotAllowedError,
    TooManyFailuresError,
)
from .goproxy.info import resolved_version
from .goproxy.requests import ModuleRequest, decode_request_path, parse_request
from .identity.proof import RequestProof
from .identity.stage import IdentityStage, open_identity
from .logs import bind_request_id
from .observability import Metrics, TimedPolicy
from .operations import Operations, Readiness, healthz, metrics_page, readyz
from .policy.engine import PolicyEngine
from .policy.input import PolicyInput
from .policy.stage import open_policy
from .responses import denial_lines, text_response
from .settings import Settings
from .trail import RequestTrail
from .upstream.stage import ForwardStage, open_forwarder

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Gateway:
    """The stages, opened once by the lifespan."""

    settings: Settings
    identity: IdentityStage
    policy: PolicyEngine
    audit: AuditStage
    forward: ForwardStage
    metrics: Metrics

    async def decide(self, trail: RequestTrail) -> None:
        """Stage 3: ask the policy about the trail's request (again, once resolved)."""
        if trail.target is None:
            raise GatewayError("decide before route")
        policy_input = PolicyInput(
            trail.request_id,
            trail.target,
            trail.identity,
            trail.client_address,
            datetime.now(UTC),
            resolved_version=trail.resolved_version,
        )
        trail.asking(policy_input)
        trail.decision = await self.policy.decide(policy_input)


async def _serve(
    gw: Gateway, request: Request, trail: RequestTrail, proof: RequestProof
) -> Response:
    if request.method != "GET":  # the protocol is GET only (HEAD included)
        raise MethodNotAllowedError(f"{request.method} is not part of the module proxy protocol")
    sumdb = gw.settings.sumdb  # 1. route
    target = trail.target = parse_request(
        trail.path, sumdb.databases, unknown_sumdb_status=sumdb.unknown_status
    )
    try:  # 2. identify: every Authorization value (two are refused, never read first-wins)
        trail.identity = await gw.identity.identify(proof)
    except TooManyFailuresError as exc:
        gw.metrics.auth_rate_limited.inc()
        response = await _refusal(gw, trail, exc.status, [exc.reason], exc.code)
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    await gw.decide(trail)  # 3. decide
    if trail.decision is None or not trail.decision.allowed:
        return await _denied(gw, trail)
    destination = gw.forward.destination(target, trail.decision.route)  # refused before 4
    await trail.allow()  # 4. record: durable before the upstream hears of it
    reply = await gw.forward.fetch(destination)  # 5. forward
    trail.upstream = reply.upstream
    if isinstance(target, ModuleRequest) and target.needs_resolution and reply.status == 200:
        trail.resolved_version = resolved_version(reply.body or b"", reply.upstream, target.module)
        await gw.decide(trail)  # 3 and 4 again, for the version the developer would get
        if not trail.allowed and target.kind == "latest":  # a blocked @latest: the newest allowed
            reply = await newest_allowed_instead(gw, trail, target, reply)
        if not trail.allowed:
            return await _denied(gw, trail)
        await trail.allow()
    if isinstance(target, ModuleRequest) and target.kind == "list" and reply.status == 200:
        await hide_blocked_versions(gw, trail, reply)
    gw.metrics.requests.inc(outcome="allow", code="")
    return gw.forward.respond(reply, trail.request_id, on_end=trail.delivered)  # 6. complete


async def proxy_endpoint(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    proof = gw.identity.proof(request)  # the client's address too, behind a trusted proxy
    # Decoded once from the bytes sent; bytes that are not UTF-8 are kept for the route stage
    # to refuse and the audit record to show (escaped, audit/storable.py).
    path = decode_request_path(request.scope)
    trail = RequestTrail(
        gw.audit.writer, uuid4().hex, path, proof.client_address, metrics=gw.metrics
    )
    bind_request_id(trail.request_id)
    try:
        return await _serve(gw, request, trail, proof)
    except GatewayError as exc:
        challenge = isinstance(exc, IdentityError) and exc.status == 401
        return await _refusal(gw, trail, exc.status, [exc.reason], exc.code, challenge=challenge)
    except Exception:  # a bug is still a refusal, recorded, never a pass
        log.exception("request %s failed unexpectedly", trail.request_id)
        reason = f"internal error in modgate (request id {trail.request_id})"
        return await _refusal(gw, trail, 500, [reason], "internal_error")


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
        await trail.refuse(tuple(reasons), code, status)
    except AuditError as exc:
        gw.metrics.audit_unrecorded_refusals.inc()
        log.error("refusal %s (%d %s) not audited: %s", trail.request_id, status, code, exc.reason)
    gw.metrics.requests.inc(outcome="deny", code=code)
    response = text_response(status, lines, trail.request_id, challenge=challenge)
    body = bytes(response.body)  # exactly what is sent, built once
    trail.complete(status, len(body), hashlib.sha256(body).hexdigest(), code, tuple(reasons))
    return response


async def _denied(gw: Gateway, trail: RequestTrail) -> Response:
    decision = trail.decision
    reasons = list(decision.messages) if decision else ["denied"]
    if not trail.identity.authenticated:
        return await _refusal(gw, trail, 401, reasons, "authentication_required", challenge=True)
    return await _refusal(gw, trail, 403, reasons, "denied_by_policy", lines=denial_lines(reasons))


async def _is_operator(request: Request) -> bool:
    """Whether the caller proves membership of ``server.operator_group``; bad or missing
    credentials are simply not an operator here (no 401 for a load balancer's probe)."""
    gw: Gateway = request.app.state.gateway
    try:  # bad credentials here are charged like anywhere else (no brute force via probes)
        identity = await gw.identity.identify(gw.identity.proof(request))
    except GatewayError:
        return False
    return gw.settings.server.operator_group in identity.groups


def build_app(settings: Settings, metrics: Metrics | None = None) -> Starlette:
    """The application for ``settings``; its lifespan opens and closes every stage.

    ``metrics`` is shared with the HTTP server (``server.py``) when it counts too."""
    metrics = Metrics() if metrics is None else metrics

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            enter = stack.enter_async_context
            audit = await enter(open_audit(settings.audit, metrics))
            policy = TimedPolicy(await enter(open_policy(settings.policy)), metrics)
            forward = await enter(
                open_forwarder(
                    settings.upstream,
                    send_timeout_s=settings.server.send_timeout_s,
                    metrics=metrics,
                )
            )
            identity = await enter(
                open_identity(
                    settings.identity,
                    audit.tokens,
                    settings.tls,
                    settings.jwt,
                    settings.server.trusted_proxies,
                    audit.watch_revocations,
                    metrics,
                )
            )
            app.state.gateway = Gateway(settings, identity, policy, audit, forward, metrics)
            checks = [*policy.checks(), *audit.checks(), *forward.checks()]
            readiness = Readiness(checks, settings.upstream.probe_cache_s)
            app.state.operations = Operations(readiness, metrics, _is_operator)
            yield

    operator_routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_page, methods=["GET"]),
        Route(CLIENT_SETTINGS_PATH, client_settings, methods=["GET"]),
    ]
    app = Starlette(routes=operator_routes, lifespan=lifespan)
    # Every other request, whatever its method or path (a path holding %0a, which no route
    # pattern matches), is a proxy request and gets its audit record from proxy_endpoint.
    app.router.default = request_response(proxy_endpoint)
    app.router.redirect_slashes = False
    return app
