"""Steering the go command to an allowed version instead of a failed build.

- A ``@v/list`` answer is served without the versions the policy refuses by name
  (``hide_blocked_versions``; the policy's ``hidden_versions``, ``policy/listing.py``), so
  `go list -m -versions` shows what can be had and `go get -u` takes the newest of it.
- A ``@latest`` the upstream resolved to a blocked version is answered with the newest
  allowed version of the module's list instead (``newest_allowed_instead``): its own
  ``.info``, fetched from the upstream and decided on like any resolved version. The go
  command asks ``@latest`` only for a module whose list holds no release, so this is
  what keeps `go get m@latest` working when a blacklisted pre-release or pseudo-version
  is all the upstream would name.

Both leave a note in the completion of the audit record (``trail.served_notes``) saying
what the developer was not given, and both fail closed: a policy that cannot say what to
hide refuses the list; a fallback that finds nothing allowed leaves the original denial.
"""

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .errors import GatewayError
from .goproxy.info import resolved_version
from .goproxy.requests import ModuleRequest
from .goproxy.semver import newest
from .policy.input import PolicyInput
from .policy.listing import listed_versions, visible_list
from .trail import RequestTrail
from .upstream.forwarder import UpstreamReply

if TYPE_CHECKING:  # app.py wires these: no import cycle at run time
    from .app import Gateway

log = logging.getLogger(__name__)


def _package(gw: "Gateway") -> str:
    return gw.settings.policy.decision_path.strip("/").rpartition("/")[0]


async def _visible(
    gw: "Gateway", trail: RequestTrail, target: ModuleRequest, body: bytes
) -> tuple[bytes, tuple[str, ...]]:
    asked = PolicyInput(
        trail.request_id, target, trail.identity, trail.client_address, trail.received_at
    )
    return await visible_list(gw.policy, _package(gw), asked, body)


async def hide_blocked_versions(gw: "Gateway", trail: RequestTrail, reply: UpstreamReply) -> None:
    """Serve the list ``reply`` without the versions the policy refuses by name."""
    if reply.body is None or not isinstance(trail.target, ModuleRequest):
        return
    reply.body, hidden = await _visible(gw, trail, trail.target, reply.body)
    if hidden:
        reply.headers.pop("ETag", None)  # the upstream's tag names the unfiltered list
        trail.served_notes = (f"hidden from the list: {', '.join(hidden)}",)


async def newest_allowed_instead(
    gw: "Gateway", trail: RequestTrail, target: ModuleRequest, reply: UpstreamReply
) -> UpstreamReply:
    """The ``.info`` of the newest allowed version, decided on (``trail.decision``), when
    the ``@latest`` in ``reply`` was refused; ``reply`` and its denial when there is none,
    or when finding one fails (an upstream or the policy): the clear refusal stands."""
    try:
        return await _newest_allowed(gw, trail, target, reply)
    except GatewayError as exc:
        log.warning("no allowed @latest for %s: %s", target.module, exc.reason)
        return reply


async def _newest_allowed(
    gw: "Gateway", trail: RequestTrail, target: ModuleRequest, reply: UpstreamReply
) -> UpstreamReply:
    refused, blocked = trail.decision, trail.resolved_version
    if refused is None or blocked is None:
        return reply
    route = refused.route
    listing = ModuleRequest(target.module, "list")
    listed = await gw.forward.fetch(gw.forward.destination(listing, route))
    if listed.status != 200 or not listed.body:
        return reply
    visible, _ = await _visible(gw, trail, listing, listed.body)
    candidate = newest(v for v in listed_versions(visible) if v != blocked)
    if candidate is None:
        return reply
    info = await gw.forward.fetch(
        gw.forward.destination(ModuleRequest(target.module, "info", candidate), route)
    )
    if info.status != 200 or info.body is None:
        return reply
    resolved = resolved_version(info.body, info.upstream, target.module)
    asked = PolicyInput(
        trail.request_id, target, trail.identity, trail.client_address, datetime.now(UTC),
        resolved_version=resolved,
    )  # fmt: skip
    decision = await gw.policy.decide(asked)
    if not decision.allowed:  # nothing allowed after all: the original denial stands
        return reply
    trail.resolved_version, trail.decision = resolved, decision
    trail.asking(asked)  # the answer given is the one decided on, and recorded
    trail.upstream = info.upstream
    why = "; ".join(refused.messages) or "denied"
    trail.served_notes = (f"@latest {blocked} refused ({why}): answered with {resolved}",)
    return info
