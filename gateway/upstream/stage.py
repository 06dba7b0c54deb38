"""The forward stage: ask the upstream list a decision routes to, and serve its answer.

    async with open_forwarder(settings.upstream, send_timeout_s=...) as forward:
        destination = forward.destination(target, decision.route)  # before the allow record
        reply = await forward.fetch(destination)                    # after it
        response = forward.respond(reply, request_id, on_end=trail.delivered)

``destination`` is separate from ``fetch`` so that a request that can go nowhere (a private
module with no private upstream, a private module's checksum lookup) is refused, and
recorded as refused, before its allow decision is; the upstream never hears of it.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

import aiohttp
from starlette.responses import Response

from ..errors import PrivateLeakError, UpstreamError
from ..goproxy.requests import ModuleRequest, SumdbRequest
from ..health import Check
from ..observability import Metrics
from ..settings import UpstreamSettings
from ..types import Route
from .forwarder import Forwarder, UpstreamReply
from .paths import upstream_path
from .respond import OnEnd, ServingLimits, respond

MAX_CONNECTIONS = 256


@dataclass(frozen=True, slots=True)
class Destination:
    """Where one request goes: the upstream list its route names, in order."""

    target: ModuleRequest | SumdbRequest
    route: Route
    bases: tuple[str, ...]


class ForwardStage:
    def __init__(
        self, forwarder: Forwarder, settings: UpstreamSettings, limits: ServingLimits
    ) -> None:
        self._forwarder = forwarder
        self._settings = settings
        self._limits = limits

    def destination(self, target: ModuleRequest | SumdbRequest, route: Route) -> Destination:
        """The upstream list for ``route``. The checksum database is public by nature: a
        lookup the policy routed private is refused here too, whatever the policy allowed."""
        if route != "private":
            return Destination(target, route, self._settings.public)
        if isinstance(target, SumdbRequest):
            raise PrivateLeakError(
                f"{target.module} is private: its checksum is never looked up in a public "
                "checksum database; add its path to GONOSUMDB"
            )
        if not self._settings.private:
            raise UpstreamError(f"{target.module} is private and no private upstream is set")
        return Destination(target, route, self._settings.private)

    async def fetch(self, destination: Destination) -> UpstreamReply:
        """The first usable answer from the destination's list; a zip's body stays open for
        streaming, every other answer is read whole."""
        target = destination.target
        return await self._forwarder.fetch(
            destination.bases, upstream_path(target), stream=target.kind == "zip"
        )

    def respond(self, reply: UpstreamReply, request_id: str, on_end: OnEnd) -> Response:
        return respond(reply, request_id, on_end, self._limits)

    def checks(self) -> list[Check]:
        """The forward stage's readiness: each configured list has an upstream that answers."""
        lists = (("public", self._settings.public), ("private", self._settings.private))
        return [
            Check(f"no {name} upstream reachable", partial(self._forwarder.reachable, bases))
            for name, bases in lists
            if bases
        ]


@asynccontextmanager
async def open_forwarder(
    settings: UpstreamSettings, *, send_timeout_s: float, metrics: Metrics | None = None
) -> AsyncIterator[ForwardStage]:
    """The forward stage over one shared HTTP session, closed on exit."""
    connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:
        forwarder = Forwarder(
            session,
            settings.connect_timeout_s,
            settings.read_timeout_s,
            total_timeout_s=settings.total_timeout_s,
            zip_timeout_s=settings.zip_timeout_s,
            metrics=metrics,
        )
        limits = ServingLimits(settings.max_zip_bytes, send_timeout_s, settings.zip_timeout_s)
        yield ForwardStage(forwarder, settings, limits)
