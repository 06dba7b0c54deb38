"""The PolicyEngine seam: one async method, one contract."""

from typing import Any, Protocol

from .decision import Decision


class PolicyEngine(Protocol):
    """Decides one request.

    ``decide`` returns a Decision for a well-formed input, or raises PolicyError when no
    decision can be had (engine down, undefined or mistyped answer): the caller refuses.
    ``healthy`` reports whether the engine answers at all (for /readyz).
    """

    async def decide(self, policy_input: dict[str, Any]) -> Decision: ...

    async def healthy(self) -> bool: ...
