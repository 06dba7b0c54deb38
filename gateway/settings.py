"""One typed Settings object, read from a TOML file and ``MODGATE_<SECTION>_<KEY>`` overrides.

Nothing here runs at import time: ``load_settings`` is called once by the CLI and the result
passed down. Every key has a default in a named constant, so no file at all gives a working
gateway (SQLite audit in the working directory, the bundled policies under a supervised OPA,
the public upstream taken from ``$GOPROXY`` or ``go env GOPROXY``). Bad values are rejected
at start-up with the key and the value named.
"""

import dataclasses
import os
import shutil
import subprocess
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints
from urllib.parse import urlsplit

from .errors import ConfigError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8443
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///modgate-audit.db"
DEFAULT_POLICIES_DIR = "policies"
DEFAULT_DECISION_PATH = "modgate/decision"
DEFAULT_POLICY_TIMEOUT_S = 2.0
DEFAULT_POLICY_RETRIES = 1
DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_READ_TIMEOUT_S = 60.0
DEFAULT_SUMDB_NAMES = ("sum.golang.org",)
DEFAULT_TOKEN_CACHE_S = 5.0
DEFAULT_MAX_ZIP_BYTES = 500 * 1024 * 1024  # the go command's own limit (x/mod/zip)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT


@dataclass(frozen=True, slots=True)
class TlsSettings:
    cert_file: str = ""
    key_file: str = ""
    plain_http: bool = False
    """Serve plain http: only for a loopback demo (the go command sends no credentials)."""


@dataclass(frozen=True, slots=True)
class IdentitySettings:
    token_cache_s: float = DEFAULT_TOKEN_CACHE_S
    """How long a verified token is trusted without asking the store (revocation delay)."""


@dataclass(frozen=True, slots=True)
class PolicySettings:
    opa_url: str = ""
    """OPA server to ask; empty: modgate starts and supervises its own OPA on policies_dir."""
    policies_dir: str = DEFAULT_POLICIES_DIR
    opa_binary: str = ""
    decision_path: str = DEFAULT_DECISION_PATH
    timeout_s: float = DEFAULT_POLICY_TIMEOUT_S
    retries: int = DEFAULT_POLICY_RETRIES


@dataclass(frozen=True, slots=True)
class AuditSettings:
    database_url: str = DEFAULT_DATABASE_URL
    migrate_on_start: bool = True


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    public: tuple[str, ...] = ()
    """Ordered public proxies; empty: the first URL of $GOPROXY, else of `go env GOPROXY`."""
    private: tuple[str, ...] = ()
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S
    max_zip_bytes: int = DEFAULT_MAX_ZIP_BYTES


@dataclass(frozen=True, slots=True)
class SumdbSettings:
    databases: tuple[str, ...] = DEFAULT_SUMDB_NAMES


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    upstream: UpstreamSettings = field(default_factory=UpstreamSettings)
    sumdb: SumdbSettings = field(default_factory=SumdbSettings)


def _cast(key: str, raw: Any, kind: Any) -> Any:
    """Turn a TOML value or an env string into ``kind``; name the key on failure."""
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if kind is int:
            if isinstance(raw, (bool, float)):
                raise ValueError("expected a whole number")
            return int(raw)
        if kind is float:
            if isinstance(raw, bool):
                raise ValueError("expected a number")
            return float(raw)
        if kind is str:
            if not isinstance(raw, str):
                raise ValueError("expected a string")
            return raw
        # tuple[str, ...]: a TOML array, or a comma-separated env string
        items = raw.split(",") if isinstance(raw, str) else list(raw)
        if not all(isinstance(item, str) for item in items):
            raise ValueError("expected a list of strings")
        return tuple(item.strip() for item in items if item.strip())
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config key {key}: bad value {raw!r}: {exc}") from exc


def _build_section(
    name: str, cls: type[Any], table: Mapping[str, Any], env: Mapping[str, str]
) -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(table) - known
    if unknown:
        raise ConfigError(f"unknown config key(s) in [{name}]: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for key in known:
        env_name = f"MODGATE_{name.upper()}_{key.upper()}"
        if env_name in env:
            values[key] = _cast(env_name, env[env_name], hints[key])
        elif key in table:
            values[key] = _cast(f"{name}.{key}", table[key], hints[key])
    return cls(**values)


def _reject_unknown_env(env: Mapping[str, str], sections: Mapping[str, Any]) -> None:
    """A misspelt MODGATE_* variable would silently leave a default in force: refuse it."""
    hints = get_type_hints(Settings)
    known = {
        f"MODGATE_{name.upper()}_{f.name.upper()}"
        for name in sections
        for f in dataclasses.fields(hints[name])
    }
    unknown = sorted(k for k in env if k.startswith("MODGATE_") and k not in known)
    if unknown:
        raise ConfigError(f"unknown setting(s) in the environment: {', '.join(unknown)}")


def first_proxy_url(goproxy: str) -> str:
    """Return the first URL of a GOPROXY list (entries split on ',' and '|'), or ""."""
    for entry in goproxy.replace("|", ",").split(","):
        entry = entry.strip()
        if entry and entry not in ("direct", "off"):
            return entry
    return ""


def _goproxy_from_go_env(env: Mapping[str, str]) -> str:
    go = shutil.which("go", path=env.get("PATH", ""))
    if go is None:
        return ""
    try:
        done = subprocess.run(
            [go, "env", "GOPROXY"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=dict(env),
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _default_public_upstream(env: Mapping[str, str]) -> tuple[str, ...]:
    url = first_proxy_url(env.get("GOPROXY", "")) or first_proxy_url(_goproxy_from_go_env(env))
    if not url:
        raise ConfigError(
            "no public upstream: set upstream.public (MODGATE_UPSTREAM_PUBLIC), "
            "or GOPROXY (or `go env -w GOPROXY=...`) to the proxy modgate should forward to"
        )
    return (url,)


def _check_url(key: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"config key {key}: {url!r} is not an http(s) URL")


def validate(settings: Settings) -> Settings:
    """Reject contradictions and bad values with the key named."""
    for url in settings.upstream.public:
        _check_url("upstream.public", url)
    for url in settings.upstream.private:
        _check_url("upstream.private", url)
        if url.rstrip("/") in {u.rstrip("/") for u in settings.upstream.public}:
            raise ConfigError(
                f"config key upstream.private: {url!r} is also a public upstream; "
                "private module paths must never reach a public upstream"
            )
    if settings.policy.opa_url:
        _check_url("policy.opa_url", settings.policy.opa_url)
    tls = settings.tls
    if tls.plain_http and (tls.cert_file or tls.key_file):
        raise ConfigError("tls.plain_http = true contradicts tls.cert_file/tls.key_file: pick one")
    for key, path in (("cert_file", tls.cert_file), ("key_file", tls.key_file)):
        if path and not Path(path).is_file():
            raise ConfigError(f"config key tls.{key}: no such file {path!r}")
    if not 1 <= settings.server.port <= 65535:
        raise ConfigError(f"config key server.port: {settings.server.port} is not a TCP port")
    positive = {
        "policy.timeout_s": settings.policy.timeout_s,
        "upstream.connect_timeout_s": settings.upstream.connect_timeout_s,
        "upstream.read_timeout_s": settings.upstream.read_timeout_s,
        "upstream.max_zip_bytes": settings.upstream.max_zip_bytes,
    }
    not_negative = {
        "identity.token_cache_s": settings.identity.token_cache_s,
        "policy.retries": settings.policy.retries,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"config key {key}: {value} must be positive")
    for key, value in not_negative.items():
        if value < 0:
            raise ConfigError(f"config key {key}: {value} must not be negative")
    if tls.plain_http and settings.server.host not in LOOPBACK_HOSTS:
        raise ConfigError(
            f"tls.plain_http = true only on a loopback address, not server.host = "
            f"{settings.server.host!r}: credentials must not cross a network in clear text"
        )
    return settings


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read ``path`` (TOML, optional) and apply ``MODGATE_*`` overrides from ``env``."""
    env = os.environ if env is None else env
    document: dict[str, Any] = {}
    if path is not None:
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    sections = {f.name: f for f in dataclasses.fields(Settings)}
    _reject_unknown_env(env, sections)
    unknown = set(document) - set(sections)
    if unknown:
        raise ConfigError(f"unknown config section(s): {', '.join(sorted(unknown))}")
    hints = get_type_hints(Settings)
    built = {}
    for name in sections:
        table = document.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"config section [{name}] must be a table")
        built[name] = _build_section(name, hints[name], table, env)
    return validate(Settings(**built))


def for_serving(settings: Settings, env: Mapping[str, str] | None = None) -> Settings:
    """Complete and check what only `modgate serve` needs: TLS and the public upstream.

    Kept apart from ``load_settings`` so `modgate token create` works on a machine with
    neither certificates nor a GOPROXY.
    """
    env = os.environ if env is None else env
    tls = settings.tls
    if not tls.plain_http and not (tls.cert_file and tls.key_file):
        raise ConfigError(
            "TLS needs tls.cert_file and tls.key_file (MODGATE_TLS_CERT_FILE, "
            "MODGATE_TLS_KEY_FILE); `modgate certs init DIR` makes a development pair. "
            "tls.plain_http = true serves plain http for a loopback demo only "
            "(the go command sends no credentials over http)"
        )
    if settings.upstream.public:
        return settings
    upstream = dataclasses.replace(settings.upstream, public=_default_public_upstream(env))
    return validate(dataclasses.replace(settings, upstream=upstream))
