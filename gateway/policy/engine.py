"""The PolicyEngine seam: what the decide stage asks of a policy engine, and nothing more."""

from typing import Protocol

from ..health import Check
from .decision import Decision
from .input import PolicyInput


class PolicyEngine(Protocol):
    """Decides one request.

    ``decide`` returns a Decision for a well-formed input, or raises one of the three
    PolicyErrors when no decision can be had (engine unreachable, answer undefined, answer
    malformed): the caller refuses. ``checks`` are the engine's own readiness checks."""

    async def decide(self, policy_input: PolicyInput) -> Decision: ...

    async def document(self, path: str, policy_input: PolicyInput | None = None) -> object:
        """Another document of the policy (``modgate/client_settings``, or
        ``modgate/hidden_versions`` for an input); PolicyError as for ``decide``."""
        ...

    async def healthy(self) -> bool: ...

    def checks(self) -> list[Check]: ...
