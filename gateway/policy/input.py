"""Build the policy input: a documented, versioned JSON shape (docs/policy.md).

Typed values go in, plain JSON comes out, with derived fields Rego authors would
otherwise recompute (``major``, ``version_is_query``, ``resolved``). ``shape`` is bumped
whenever a field changes meaning, so policies can refuse inputs they do not know.
"""

from datetime import datetime
from typing import Any

from ..goproxy import semver
from ..goproxy.requests import ModuleRequest, SumdbRequest
from ..identity.base import Identity

INPUT_SHAPE = 1


def policy_input(
    request_id: str,
    target: ModuleRequest | SumdbRequest,
    identity: Identity,
    client_address: str,
    now: datetime,
    *,
    resolved_version: str | None = None,
) -> dict[str, Any]:
    """Return the input document for one decision.

    ``resolved_version`` is set when the gateway asks again about the canonical version an
    upstream resolved for a revision query or ``@latest``.
    """
    version = resolved_version if resolved_version is not None else target.version
    is_query = isinstance(target, ModuleRequest) and target.version_is_query
    sumdb = (
        {"database": target.database, "kind": target.sumdb_kind}
        if isinstance(target, SumdbRequest)
        else None
    )
    return {
        "shape": INPUT_SHAPE,
        "request": {
            "kind": target.kind,
            "module": target.module,
            "version": version,
            "version_is_query": is_query and resolved_version is None,
            "resolved": resolved_version is not None,
            "major": semver.major(version) if version and semver.is_canonical(version) else None,
            "sumdb": sumdb,
            "id": request_id,
        },
        "identity": {
            "authenticated": identity.authenticated,
            "subject": identity.subject,
            "groups": list(identity.groups),
            "method": identity.method,
        },
        "client": {"address": client_address},
        "time": {"rfc3339": now.isoformat().replace("+00:00", "Z"), "unix_ns": _unix_ns(now)},
    }


def _unix_ns(now: datetime) -> int:
    return int(now.timestamp()) * 1_000_000_000 + now.microsecond * 1_000
