"""OpaPolicyEngine: decisions from a real OPA server over its REST API.

One aiohttp session per OPA address, held open for the application's lifetime. The address
is an ``OpaEndpoint``: the supervised OPA's Unix socket, or a remote ``policy.opa_url`` with
an optional bearer token and CA bundle. When the supervisor restarts its OPA on a new
socket, ``follow`` swaps in a session for the new address and closes the old one; a request
caught on the old one fails closed (503) like any other unreachable engine.

This is the typed seam: every aiohttp, ssl and JSON error is translated here to one of the
three PolicyErrors (at request time: unreachable, undefined, malformed) or to ConfigError (at
start-up). A decision's body is the PolicyInput's own text inside ``{"input": ...}``, never
serialised again. OPA's REST API, as used:

    POST /v1/data/<path>  {"input": ...}  ->  200 {"result": ...}, or 200 {} when undefined
    GET  /health                          ->  200 when the server is up

(opa-python-client was used before; it builds its own TCP connector, so it can reach neither
a Unix socket nor an https OPA signed by a private CA. The 60-odd lines below replace it:
see bench/decision_bench.py for the cost of each path.)
"""

import asyncio
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import aiohttp

from ..errors import (
    ConfigError,
    PolicyError,
    PolicyMalformedError,
    PolicyUndefinedError,
    PolicyUnreachableError,
)
from ..health import Check
from ..http.tls import client_context
from ..settings import LOOPBACK_HOSTS, PolicySettings
from .decision import Decision, decision_from_reply
from .input import PolicyInput
from .peer import OwnChildConnector

log = logging.getLogger(__name__)

SOCKET_BASE_URL = "http://opa"  # the host is not used on a Unix socket, only the path
RETRYABLE_STATUSES = frozenset({502, 503, 504})
RETRY_BACKOFF_S = 0.1
HEALTH_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class OpaEndpoint:
    """Where one OPA server listens, and how modgate proves who it is to it."""

    base_url: str
    """``scheme://host:port`` of a remote OPA, or SOCKET_BASE_URL with ``unix_socket``."""
    unix_socket: str = ""
    peer_pid: int = 0
    """With ``unix_socket``: the pid every connection must end at (0: not checked)."""
    token: str = field(default="", repr=False)  # never in a log line or a traceback
    ca_file: str = ""

    @classmethod
    def for_socket(cls, path: str, peer_pid: int = 0) -> "OpaEndpoint":
        return cls(SOCKET_BASE_URL, unix_socket=path, peer_pid=peer_pid)

    @classmethod
    def for_url(cls, url: str, token: str = "", ca_file: str = "") -> "OpaEndpoint":
        """Only scheme, host and port of ``url`` are used (the REST API sits at the root)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.hostname is None:
            raise ConfigError(f"config key policy.opa_url: {url!r} is not an http(s) URL")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise ConfigError(f"config key policy.opa_url: {url!r} has a bad port") from exc
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return cls(f"{parts.scheme}://{host}:{port}", token=token, ca_file=ca_file)

    def describe(self) -> str:
        """For log lines: the address, never the token."""
        return f"unix:{self.unix_socket}" if self.unix_socket else self.base_url


def _read_token(policy: PolicySettings) -> str:
    """The bearer token from policy.opa_token or the file policy.opa_token_file."""
    key, token = "opa_token", policy.opa_token.strip()
    if policy.opa_token_file:
        key = "opa_token_file"
        try:
            token = Path(policy.opa_token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"config key policy.opa_token_file: cannot read {policy.opa_token_file!r}"
            ) from exc
        if not token:
            raise ConfigError(
                f"config key policy.opa_token_file: {policy.opa_token_file!r} is empty"
            )
    # OPA takes the token as ``Bearer\s+(\S+)`` (server/identifier/token.go): one word.
    if token and not (token.isascii() and token.isprintable() and " " not in token):
        raise ConfigError(f"config key policy.{key}: the token must be one word of ASCII")
    return token


def remote_endpoint(policy: PolicySettings) -> OpaEndpoint:
    """The OpaEndpoint for ``policy.opa_url``, with its token read now (at start-up)."""
    endpoint = OpaEndpoint.for_url(policy.opa_url, _read_token(policy), policy.opa_ca_file)
    host = urlsplit(endpoint.base_url).hostname or ""
    if endpoint.token and endpoint.base_url.startswith("http://") and host not in LOOPBACK_HOSTS:
        log.warning(
            "the OPA token goes to %s in clear text: use https (policy.opa_ca_file) "
            "unless that network is private to the gateway and OPA",
            endpoint.base_url,
        )
    return endpoint


def _connector(endpoint: OpaEndpoint) -> aiohttp.BaseConnector:
    if endpoint.unix_socket and endpoint.peer_pid:
        return OwnChildConnector(endpoint.unix_socket, endpoint.peer_pid)
    if endpoint.unix_socket:
        return aiohttp.UnixConnector(path=endpoint.unix_socket)
    if not endpoint.base_url.startswith("https://"):
        return aiohttp.TCPConnector()
    return aiohttp.TCPConnector(ssl=client_context(endpoint.ca_file, "policy.opa_ca_file"))


class _Connection:
    """One open session to one OpaEndpoint."""

    def __init__(self, endpoint: OpaEndpoint, timeout_s: float) -> None:
        self.endpoint = endpoint
        headers = {"Content-Type": "application/json"}
        if endpoint.token:
            headers["Authorization"] = f"Bearer {endpoint.token}"
        self.session = aiohttp.ClientSession(
            connector=_connector(endpoint),
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        )

    async def close(self) -> None:
        await self.session.close()


class OpaPolicyEngine:
    """``async with OpaPolicyEngine(endpoint, "modgate/decision", 2, 1) as engine: ...``

    ``await engine.decide(policy_input)`` -> Decision; ``await engine.document(path)`` ->
    OPA's ``result``; ``await engine.healthy()`` -> bool; ``engine.checks()`` -> its readiness
    checks; ``await engine.follow(endpoint)`` moves to a new address (``None``: OPA is down).
    Leaving the block closes the session."""

    def __init__(
        self, endpoint: OpaEndpoint, decision_path: str, timeout_s: float, retries: int
    ) -> None:
        self._endpoint = endpoint
        self.decision_path = normalise_path(decision_path)
        self._timeout_s = timeout_s
        self._retries = retries
        self._connection: _Connection | None = None
        self._closed = False

    @property
    def endpoint(self) -> OpaEndpoint:
        return self._endpoint

    async def __aenter__(self) -> "OpaPolicyEngine":
        self._connection = _Connection(self._endpoint, self._timeout_s)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed = True
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()

    async def follow(self, endpoint: OpaEndpoint | None) -> None:
        """Ask ``endpoint`` from now on (None: nowhere, OPA is down); requests still on the
        old address fail (503)."""
        if self._closed:
            return
        old = self._connection
        self._connection = None if endpoint is None else _Connection(endpoint, self._timeout_s)
        if endpoint is not None:
            self._endpoint = endpoint
            log.info("policy engine now at %s", endpoint.describe())
        if old is not None:
            await old.close()

    async def decide(self, policy_input: PolicyInput) -> Decision:
        return decision_from_reply(await self._post(self.decision_path, _body(policy_input)))

    async def document(self, path: str, policy_input: PolicyInput | None = None) -> object:
        """OPA's ``result`` for ``POST /v1/data/<path>``; PolicyUndefinedError when undefined."""
        reply = await self._post(normalise_path(path), _body(policy_input))
        if not isinstance(reply, dict) or "result" not in reply:
            raise PolicyUndefinedError(f"policy document {normalise_path(path)} is undefined")
        return reply["result"]

    async def config_ok(self) -> bool:
        """``config_ok`` beside the decision document: false when the policy data is malformed
        (every request is then refused). A policy that defines no such rule is not judged
        here, nor is an engine that cannot be asked (``healthy`` reports that); decisions are."""
        package = self.decision_path.rpartition("/")[0]
        try:
            return await self.document(f"{package}/config_ok") is True
        except PolicyError:  # undefined, or unreachable: not this check's to report
            return True

    def checks(self) -> list[Check]:
        """The policy stage's readiness: OPA answers, and its policy data is well-formed."""
        return [
            Check("policy engine not healthy", self.healthy),
            Check("policy data malformed: run modgate policy check", self.config_ok),
        ]

    async def healthy(self) -> bool:
        connection = self._connection
        if connection is None or connection.session.closed:
            return False
        url = f"{connection.endpoint.base_url}/health"
        try:
            async with connection.session.get(
                url, timeout=aiohttp.ClientTimeout(total=HEALTH_TIMEOUT_S)
            ) as response:
                await response.read()
                return response.status == 200
        except (TimeoutError, aiohttp.ClientError, OSError):
            return False

    async def _post(self, path: str, data: bytes) -> object:
        attempt = 0
        while True:
            connection = self._connection  # re-read: a retry goes to a restarted OPA
            if connection is None or connection.session.closed:
                raise PolicyUnreachableError("policy engine unreachable")
            try:
                return await self._post_once(connection, path, data)
            except _Retryable as exc:
                if attempt >= self._retries:
                    raise PolicyUnreachableError(exc.reason) from exc.__cause__
            attempt += 1
            await asyncio.sleep(RETRY_BACKOFF_S * attempt)

    async def _post_once(self, connection: _Connection, path: str, data: bytes) -> object:
        url = f"{connection.endpoint.base_url}/v1/data/{path}"
        try:
            async with connection.session.post(url, data=data) as response:
                payload = await response.read()
                status = response.status
        except TimeoutError as exc:
            raise _Retryable("policy engine did not answer in time") from exc
        except aiohttp.ClientSSLError as exc:  # no retry: the next attempt fails alike
            raise PolicyUnreachableError(
                "policy engine's TLS certificate was not accepted: check policy.opa_ca_file"
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise _Retryable("policy engine unreachable") from exc
        if status in RETRYABLE_STATUSES:
            raise _Retryable(f"policy engine answered HTTP {status}")
        if status in (401, 403):
            raise PolicyUnreachableError(_refused_reason(connection.endpoint, status))
        if status == 500:  # OPA's answer to an evaluation error (a conflict, say): the policy
            raise PolicyMalformedError(f"policy engine answered HTTP {status}")
        if status != 200:
            raise PolicyUnreachableError(f"policy engine answered HTTP {status}")
        try:
            reply: object = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PolicyMalformedError("policy engine answered malformed JSON") from exc
        return reply


def _body(policy_input: PolicyInput | None) -> bytes:
    """The request body around the input's own text: it is not serialised a second time."""
    if policy_input is None:
        return b"{}"
    return b'{"input":' + policy_input.encoded() + b"}"


class _Retryable(Exception):
    """A failure worth another attempt (connection, timeout, 502/503/504)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _refused_reason(endpoint: OpaEndpoint, status: int) -> str:
    if endpoint.token:
        return f"policy engine refused modgate's token (HTTP {status}): check policy.opa_token_file"
    return f"policy engine refused modgate (HTTP {status}): does it need policy.opa_token_file?"


def normalise_path(path: str) -> str:
    """``modgate.decision``, ``/modgate/decision/`` -> ``modgate/decision``."""
    return path.strip("/").replace(".", "/")
