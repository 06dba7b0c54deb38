"""The versions of an upstream's ``@v/list`` the policy hides, and the list served without them.

A version the blacklist refuses by name is removed from the list (``hidden_versions`` in
policies/modgate/listing.rego), so `go list -m -versions` shows what can be fetched and
`go get -u` picks the newest allowed version instead of failing on a blocked one. The
policy is asked once per list, with every listed version in ``request.versions`` of the
same input the list was decided on. An answer that is not a list of versions is a
PolicyMalformedError: the list is refused (fail closed), never served unfiltered.
"""

import dataclasses

from ..errors import PolicyMalformedError
from .engine import PolicyEngine
from .input import PolicyInput

MAX_LISTED = 10_000
"""More versions than any module has: a longer list is refused, not asked about."""


def listed_versions(body: bytes) -> tuple[str, ...]:
    """The versions of a ``@v/list`` body, one per line, in the upstream's order."""
    text = body.decode("utf-8", errors="replace")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


async def visible_list(
    policy: PolicyEngine, package: str, decided: PolicyInput, body: bytes
) -> tuple[bytes, tuple[str, ...]]:
    """The list ``body`` without the versions the policy hides, and those versions."""
    versions = listed_versions(body)
    if not versions:
        return body, ()
    if len(versions) > MAX_LISTED:
        raise PolicyMalformedError(f"the upstream listed more than {MAX_LISTED} versions")
    asked = dataclasses.replace(decided, listed_versions=versions)
    answer = await policy.document(f"{package}/hidden_versions", asked)
    if not isinstance(answer, list) or not all(isinstance(v, str) for v in answer):
        raise PolicyMalformedError("the policy's hidden_versions is not a list of versions")
    hidden = set(answer)
    if not hidden:
        return body, ()
    kept = [version for version in versions if version not in hidden]
    return "".join(f"{version}\n" for version in kept).encode(), tuple(
        version for version in versions if version in hidden
    )
