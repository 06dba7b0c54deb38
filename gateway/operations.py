"""The operator's endpoints beside the proxy: /healthz, /readyz and /metrics.

They are not part of the module proxy protocol and have no audit record. What they say
about the gateway's insides (which dependency is down, the counters) is for operators
only: callers in ``server.operator_group`` (sending their token like any other caller).
Everyone else, the load balancer's probe included, gets a bare status:

    GET /healthz   200 "ok"                      the process answers
    GET /readyz    200 "ready" | 503 "not ready" (operators: one line per problem)
    GET /metrics   Prometheus text (operators only; 401/403 otherwise)

Prometheus is best pointed at the metrics listener instead (``metrics.listen``, plain http
on 127.0.0.1:9464 by default, ``server.py``), which needs no token; /metrics here is for
a scraper that can only reach the main port, over TLS with an operator's token.

/readyz runs the checks each stage offers about itself (``health.Check``: OPA and its
policy data, the audit store, the upstreams) at most once every ``upstream.probe_cache_s``
seconds, however often it is asked, and concurrent probes share one look: asking it cannot
load the upstreams.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from .health import Check
from .observability import PROMETHEUS_CONTENT_TYPE, Metrics
from .responses import TEXT_PLAIN, text_body, text_response

log = logging.getLogger(__name__)

OperatorTest = Callable[[Request], Awaitable[bool]]


class Readiness:
    """The stages' checks, probed together and remembered for ``cache_s``."""

    def __init__(self, checks: Sequence[Check], cache_s: float) -> None:
        self._checks = tuple(checks)
        self._cache_s = cache_s
        self._lock = asyncio.Lock()
        self._checked_at = -float("inf")
        self._problems: list[str] = []

    async def _probe(self, problem: str, probe: Callable[[], Awaitable[bool]]) -> str | None:
        try:
            return None if await probe() else problem
        except Exception:  # a probe that fails is a problem, never a crash of /readyz
            log.exception("readiness probe failed: %s", problem)
            return problem

    async def problems(self) -> list[str]:
        """Every problem found (empty: ready), at most ``cache_s`` old."""
        async with self._lock:  # one probe at a time; waiters reuse its answer
            if time.monotonic() - self._checked_at >= self._cache_s:
                found = await asyncio.gather(*(self._probe(p, c) for p, c in self._checks))
                self._problems = [problem for problem in found if problem is not None]
                self._checked_at = time.monotonic()
            return list(self._problems)


@dataclass(frozen=True, slots=True)
class Operations:
    """What the operator endpoints need, opened by the app's lifespan (``app.state``)."""

    readiness: Readiness
    metrics: Metrics
    is_operator: OperatorTest


async def healthz(_request: Request) -> Response:
    return PlainTextResponse("ok\n")


async def readyz(request: Request) -> Response:
    ops: Operations = request.app.state.operations
    problems = await ops.readiness.problems()
    if await ops.is_operator(request):
        lines = problems or ["ready"]
    else:
        lines = ["not ready"] if problems else ["ready"]
    status = 503 if problems else 200
    return Response(text_body(lines), status_code=status, media_type=TEXT_PLAIN)


async def metrics_page(request: Request) -> Response:
    ops: Operations = request.app.state.operations
    if not await ops.is_operator(request):
        anonymous = "authorization" not in request.headers
        reason = "metrics are for operators: send a token of the operator group"
        return text_response(401 if anonymous else 403, [reason], "-", challenge=anonymous)
    return Response(ops.metrics.render(), media_type=PROMETHEUS_CONTENT_TYPE)
