"""open_policy: the decide stage, opened from the ``[policy]`` settings.

A remote OPA (``policy.opa_url``) is asked over HTTP(S); without one, modgate runs its own
(``supervisor.py``) on a private socket, and the engine follows it to each new socket when
it is restarted.
"""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from ..settings import PolicySettings
from .opa import OpaPolicyEngine, remote_endpoint
from .supervisor import supervised_opa


@asynccontextmanager
async def open_policy(settings: PolicySettings) -> AsyncIterator[OpaPolicyEngine]:
    async with AsyncExitStack() as stack:
        supervised = None
        if settings.opa_url:
            endpoint = remote_endpoint(settings)
        else:
            supervised = await stack.enter_async_context(supervised_opa(settings))
            endpoint = supervised.endpoint
        engine = await stack.enter_async_context(
            OpaPolicyEngine(endpoint, settings.decision_path, settings.timeout_s, settings.retries)
        )
        if supervised is not None:
            supervised.on_restart(engine.follow)
        yield engine
