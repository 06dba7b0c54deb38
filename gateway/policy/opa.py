"""OpaPolicyEngine: decisions from a real OPA server over its REST API.

Uses opa-python-client's AsyncOpaClient (aiohttp inside), entered once for the
application's lifetime. The client ships no type information, so this module is the
typed seam: every third-party error is translated to PolicyError here.
"""

import json
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from opa_client import AsyncOpaClient

from ..errors import ConfigError, PolicyError
from .decision import Decision, decision_from_reply


class OpaPolicyEngine:
    """``async with OpaPolicyEngine(url, "modgate/decision") as engine: await engine.decide(i)``"""

    def __init__(self, url: str, decision_path: str, timeout_s: float, retries: int) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.hostname is None:
            raise ConfigError(f"config key policy.opa_url: {url!r} is not an http(s) URL")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self._decision_path = decision_path.strip("/")
        self._client: Any = AsyncOpaClient(
            host=parts.hostname,
            port=port,
            ssl=parts.scheme == "https",
            retries=retries,
            timeout=timeout_s,
        )

    async def __aenter__(self) -> "OpaPolicyEngine":
        await self._client.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.__aexit__(exc_type, exc, tb)

    async def decide(self, policy_input: dict[str, Any]) -> Decision:
        try:
            reply = await self._client.query_rule(policy_input, self._decision_path)
        except aiohttp.ClientResponseError as exc:
            raise PolicyError(f"policy engine answered HTTP {exc.status}") from exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise PolicyError("policy engine unreachable") from exc
        except (json.JSONDecodeError, ValueError) as exc:
            raise PolicyError("policy engine answered malformed JSON") from exc
        return decision_from_reply(reply)

    async def healthy(self) -> bool:
        return bool(await self._client.check_health())
