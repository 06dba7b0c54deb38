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
from .identity.forwarded import parse_networks
from .identity.presets import apply_preset
from .policy.opa_command import DEFAULT_OPA_LOG_LEVEL, OPA_LOG_LEVELS

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8443
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///modgate-audit.db"
DEFAULT_DECISION_PATH = "modgate/decision"
DEFAULT_POLICY_TIMEOUT_S = 2.0
DEFAULT_POLICY_RETRIES = 1
DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_READ_TIMEOUT_S = 60.0
DEFAULT_SUMDB_NAMES = ("sum.golang.org",)
DEFAULT_TOKEN_CACHE_S = 5.0
DEFAULT_MAX_ZIP_BYTES = 500 * 1024 * 1024  # the go command's own limit (x/mod/zip)
DEFAULT_MAX_CONNECTIONS = 1024
DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_KEEP_ALIVE_TIMEOUT_S = 5.0
DEFAULT_SEND_TIMEOUT_S = 30.0
DEFAULT_MAX_REQUEST_LINE_BYTES = 8 * 1024
DEFAULT_MAX_HEADER_BYTES = 16 * 1024
DEFAULT_MAX_HEADERS = 100
DEFAULT_OPERATOR_GROUP = "modgate-operators"
DEFAULT_NEGATIVE_CACHE_S = 30.0
DEFAULT_FAILED_AUTH_PER_MINUTE = 30
DEFAULT_AUDIT_TIMEOUT_S = 3.0
DEFAULT_TOTAL_TIMEOUT_S = 30.0
DEFAULT_ZIP_TIMEOUT_S = 900.0
DEFAULT_PROBE_CACHE_S = 5.0
DEFAULT_UNKNOWN_SUMDB_STATUS = 403
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
DEFAULT_LOG_FORMAT = "text"
DEFAULT_LOG_LEVEL = "info"
LOG_FORMATS = ("text", "json")
CLIENT_CERT_MODES = ("none", "optional", "required")
CERT_SUBJECT_SOURCES = ("uri", "dns", "email", "cn")
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_METRICS_LISTEN = "127.0.0.1:9464"
JWT_ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
"""The asymmetric algorithms an issuer's JWKS may sign with; HS256 only with a shared secret."""
DEFAULT_JWT_LEEWAY_S = 30.0
DEFAULT_JWKS_REFRESH_S = 300.0
DEFAULT_UNKNOWN_KID_INTERVAL_S = 30.0
DEFAULT_JWKS_TIMEOUT_S = 5.0
DEFAULT_JWKS_MAX_AGE_S = 86_400.0
DEFAULT_JWT_CACHE_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    """Open client connections at most; one more is closed at once (and counted)."""
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    """Seconds a client has to send a request's line and headers, however it trickles them."""
    keep_alive_timeout_s: float = DEFAULT_KEEP_ALIVE_TIMEOUT_S
    """Seconds an idle keep-alive connection stays open between requests."""
    send_timeout_s: float = DEFAULT_SEND_TIMEOUT_S
    """Seconds a client may leave a streamed answer waiting (it stopped reading); then it is
    cut off as too slow, and the upstream connection behind it is freed."""
    max_request_line_bytes: int = DEFAULT_MAX_REQUEST_LINE_BYTES
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    """All header lines of one request together, in bytes."""
    max_headers: int = DEFAULT_MAX_HEADERS
    operator_group: str = DEFAULT_OPERATOR_GROUP
    """Callers in this group see /readyz details and /metrics; everyone else a bare status."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks (CIDR) of front proxies whose X-Forwarded-For (and, with
    identity.forwarded_client_cert, X-Forwarded-Client-Cert) headers are believed."""


@dataclass(frozen=True, slots=True)
class TlsSettings:
    cert_file: str = ""
    key_file: str = ""
    plain_http: bool = False
    """Serve plain http: only for a loopback demo (the go command sends no credentials)."""
    client_cert: str = "none"
    """Ask clients for a certificate: "none", "optional" (verified when one is sent: a
    request without one is identified by its Authorization header, or is anonymous) or
    "required" (a handshake without one fails)."""
    client_ca_file: str = ""
    """PEM bundle of the CAs whose client certificates are accepted (and only these)."""
    client_crl_file: str = ""
    """A CRL (PEM or DER) of a client CA; reread when it changes, no restart needed."""
    client_deny_serials_file: str = ""
    """Serial numbers (hex, one per line) of client certificates refused, whoever signed
    them; reread when it changes."""


@dataclass(frozen=True, slots=True)
class IdentitySettings:
    token_cache_s: float = DEFAULT_TOKEN_CACHE_S
    """How long a verified token is trusted without asking the store (revocation delay)."""
    negative_cache_s: float = DEFAULT_NEGATIVE_CACHE_S
    """How long an unknown token id is remembered as unknown (no store lookup meanwhile)."""
    failed_auth_per_minute: int = DEFAULT_FAILED_AUTH_PER_MINUTE
    """Bad credentials one client address may send per minute before 429; 0 disables."""
    forwarded_client_cert: bool = False
    """Identify by the X-Forwarded-Client-Cert (Envoy's format) of a trusted proxy."""
    forwarded_ca_file: str = ""
    """PEM bundle of the CAs whose forwarded client certificates are accepted."""
    cert_groups_file: str = ""
    """JSON ``{"subject": ["group", ...]}``: the groups of certificate subjects, instead of
    their OUs; reread when it changes."""
    cert_subject_from: tuple[str, ...] = CERT_SUBJECT_SOURCES
    """Where a client certificate's subject is read, first match wins: "uri" (a SPIFFE ID
    or other URI SAN), "dns" (a DNS SAN), "email" (an e-mail SAN), "cn" (subject CN)."""


@dataclass(frozen=True, slots=True)
class JwtIssuerSettings:
    """One trusted JWT issuer (a ``[[jwt.issuers]]`` table of the config file)."""

    name: str = ""
    """A short name for logs, /readyz and the identity's details (``issuer_name``)."""
    preset: str = ""
    """``github`` or ``gitlab``: that CI system's OIDC id_tokens (issuer, discovery, subject
    ``ci:github:<org>/<repo>``, pipeline details); any key set here overrides the preset."""
    issuer: str = ""
    """The exact ``iss`` its tokens carry."""
    audience: tuple[str, ...] = ()
    """Accepted ``aud`` values (one must match); required, so tokens minted for another
    service are never accepted here."""
    jwks_url: str = ""
    """https URL of the issuer's JWKS."""
    jwks_file: str = ""
    """A JWKS file instead, reread when it changes."""
    discovery: bool = False
    """Find the JWKS at ``<issuer>/.well-known/openid-configuration``'s ``jwks_uri``."""
    ca_file: str = ""
    """PEM CA bundle for the issuer's https (default: the system's)."""
    algorithms: tuple[str, ...] = ()
    """Accepted ``alg`` values; default: RS256, PS256, ES256, EdDSA (HS256 with a secret)."""
    shared_secret_file: str = ""
    """HS256 only: a file holding the shared secret; excludes a JWKS for this issuer."""
    subject_claim: str = "sub"
    subject_prefix: str = ""
    """Put before the subject claim, e.g. ``sso:``, so subjects of issuers never collide."""
    groups_claim: str = ""
    """A claim holding a list of group names (or one name); empty: none."""
    groups: tuple[str, ...] = ()
    """Groups every identity of this issuer is in (e.g. ``ci``)."""
    detail_claims: tuple[str, ...] = ()
    """Claims copied into the identity's details, as ``claim`` or ``name=claim``."""
    leeway_s: float = DEFAULT_JWT_LEEWAY_S
    """Clock skew allowed on ``exp`` and ``nbf``."""


@dataclass(frozen=True, slots=True)
class JwtSettings:
    issuers: tuple[JwtIssuerSettings, ...] = ()
    """The trusted issuers, from ``[[jwt.issuers]]`` tables (config file only)."""
    refresh_s: float = DEFAULT_JWKS_REFRESH_S
    """Key sets are fetched again this often, so a rotation needs no restart."""
    unknown_kid_interval_s: float = DEFAULT_UNKNOWN_KID_INTERVAL_S
    """A token with an unknown ``kid`` refetches its issuer's keys at most this often: a
    flood of made-up key ids cannot hammer the issuer."""
    keys_max_age_s: float = DEFAULT_JWKS_MAX_AGE_S
    """Keys that could not be refreshed for this long are no longer used (503): an issuer
    that is down keeps working from its last keys until then, not forever."""
    fetch_timeout_s: float = DEFAULT_JWKS_TIMEOUT_S
    cache_entries: int = DEFAULT_JWT_CACHE_ENTRIES
    """Verified tokens remembered (by hash, until their ``exp``): a go command's hundreds
    of requests with one token pay for one signature check."""


@dataclass(frozen=True, slots=True)
class PolicySettings:
    opa_url: str = ""
    """OPA server to ask; empty: modgate starts and supervises its own OPA on policies_dir."""
    policies_dir: str = ""
    """Rego and data of the supervised OPA; empty: the policies bundled with modgate."""
    opa_binary: str = ""
    decision_path: str = DEFAULT_DECISION_PATH
    timeout_s: float = DEFAULT_POLICY_TIMEOUT_S
    retries: int = DEFAULT_POLICY_RETRIES
    opa_token: str = ""
    """Bearer token for opa_url (an OPA run with --authentication=token); prefer the file."""
    opa_token_file: str = ""
    """File holding the bearer token for opa_url (read at start-up)."""
    opa_ca_file: str = ""
    """PEM CA bundle that signs an https opa_url's certificate (default: the system's)."""
    opa_log_level: str = DEFAULT_OPA_LOG_LEVEL
    """Log level of the supervised OPA (debug, info, error); at info it logs every request."""
    decision_logs: bool = False
    """The supervised OPA writes one JSON line per decision (input and result) to stdout."""


@dataclass(frozen=True, slots=True)
class AuditSettings:
    database_url: str = DEFAULT_DATABASE_URL
    migrate_on_start: bool = True
    timeout_s: float = DEFAULT_AUDIT_TIMEOUT_S
    """Deadline for one audit commit or token lookup (also the PostgreSQL statement and
    lock timeouts); past it the request is refused with 503."""


@dataclass(frozen=True, slots=True)
class UpstreamSettings:
    public: tuple[str, ...] = ()
    """Ordered public proxies; empty: the first URL of $GOPROXY, else of `go env GOPROXY`."""
    private: tuple[str, ...] = ()
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    read_timeout_s: float = DEFAULT_READ_TIMEOUT_S
    total_timeout_s: float = DEFAULT_TOTAL_TIMEOUT_S
    """Deadline for a whole buffered answer (list, info, mod, sumdb), however it trickles."""
    zip_timeout_s: float = DEFAULT_ZIP_TIMEOUT_S
    """Deadline for a whole streamed zip download from an upstream."""
    max_zip_bytes: int = DEFAULT_MAX_ZIP_BYTES
    probe_cache_s: float = DEFAULT_PROBE_CACHE_S
    """How long /readyz reuses its last look at the upstreams, OPA and the audit store."""


@dataclass(frozen=True, slots=True)
class SumdbSettings:
    databases: tuple[str, ...] = DEFAULT_SUMDB_NAMES
    unknown_status: int = DEFAULT_UNKNOWN_SUMDB_STATUS
    """Answer for /sumdb/<name>/ of a name not in databases: 403 keeps the go command from
    asking that database directly (around modgate); 404 lets it."""


@dataclass(frozen=True, slots=True)
class LogSettings:
    format: str = DEFAULT_LOG_FORMAT
    """``text`` (readable lines) or ``json`` (one object per line, for log shippers)."""
    level: str = DEFAULT_LOG_LEVEL
    """``debug``, ``info`` (one line per request), ``warning`` or ``error``."""


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    listen: str = DEFAULT_METRICS_LISTEN
    """``host:port`` of a plain-http listener serving /metrics to anyone who can reach it
    (loopback by default: a local agent scrapes it); empty: none. /metrics on the main
    port stays, for callers in ``server.operator_group``."""


def listen_address(listen: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9464`` for IPv6) as a host and a port; ConfigError if not."""
    parts = urlsplit(f"//{listen}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None or not 1 <= port <= 65535 or parts.path:
        raise ConfigError(f"config key metrics.listen: {listen!r} is not host:port")
    return parts.hostname, port


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    identity: IdentitySettings = field(default_factory=IdentitySettings)
    jwt: JwtSettings = field(default_factory=JwtSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    upstream: UpstreamSettings = field(default_factory=UpstreamSettings)
    sumdb: SumdbSettings = field(default_factory=SumdbSettings)
    log: LogSettings = field(default_factory=LogSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)


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
        if kind == tuple[JwtIssuerSettings, ...]:
            return _issuers(key, raw)
        # tuple[str, ...]: a TOML array, or a comma-separated env string
        items = raw.split(",") if isinstance(raw, str) else list(raw)
        if not all(isinstance(item, str) for item in items):
            raise ValueError("expected a list of strings")
        return tuple(item.strip() for item in items if item.strip())
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config key {key}: bad value {raw!r}: {exc}") from exc


def _issuers(key: str, raw: Any) -> tuple[JwtIssuerSettings, ...]:
    if isinstance(raw, str):
        raise ValueError("issuers are [[jwt.issuers]] tables of the config file, not a variable")
    if not isinstance(raw, list) or not all(isinstance(table, dict) for table in raw):
        raise ValueError("expected [[jwt.issuers]] tables")
    issuers = []
    for number, table in enumerate(raw, 1):
        where = f"jwt.issuers[{number}]"
        built = _build_section(where, JwtIssuerSettings, table, {})
        issuer = apply_preset(built, set(table), where)
        if not issuer.algorithms:
            default = ("HS256",) if issuer.shared_secret_file else JWT_ALGORITHMS
            issuer = dataclasses.replace(issuer, algorithms=default)
        issuers.append(issuer)
    return tuple(issuers)


MIN_SHARED_SECRET_BYTES = 32
"""HS256 with a shorter secret can be brute-forced from one token (RFC 7518 section 3.2)."""


def _validate_issuer(where: str, issuer: JwtIssuerSettings) -> None:
    if not issuer.name:
        raise ConfigError(f"{where}: set name (a short name for logs and /readyz)")
    where = f"jwt issuer {issuer.name!r}"
    if not issuer.issuer:
        raise ConfigError(f"{where}: set issuer, the exact iss its tokens carry")
    if not issuer.audience:
        raise ConfigError(
            f"{where}: set audience, the aud its tokens must carry for modgate "
            "(without one, a token minted for any other service would be accepted)"
        )
    sources = [
        key
        for key, present in (
            ("jwks_url", issuer.jwks_url),
            ("jwks_file", issuer.jwks_file),
            ("discovery", issuer.discovery),
            ("shared_secret_file", issuer.shared_secret_file),
        )
        if present
    ]
    if len(sources) != 1:
        raise ConfigError(
            f"{where}: set exactly one of jwks_url, jwks_file, discovery = true or "
            f"shared_secret_file (found {', '.join(sources) or 'none'})"
        )
    for key, url in (("jwks_url", issuer.jwks_url), ("issuer", issuer.issuer)):
        if (key == "jwks_url" and url) or (key == "issuer" and issuer.discovery):
            parts = urlsplit(url)
            if parts.scheme != "https" or not parts.hostname:
                raise ConfigError(f"{where}: {key} {url!r} must be an https URL")
    for key, path in (
        ("jwks_file", issuer.jwks_file),
        ("shared_secret_file", issuer.shared_secret_file),
        ("ca_file", issuer.ca_file),
    ):
        if path and not Path(path).is_file():
            raise ConfigError(f"{where}: {key}: no such file {path!r}")
    if issuer.ca_file and not (issuer.jwks_url or issuer.discovery):
        raise ConfigError(f"{where}: ca_file is for a key set fetched over https")
    refused = [a for a in issuer.algorithms if a not in (*JWT_ALGORITHMS, "HS256")]
    if refused:
        raise ConfigError(
            f"{where}: algorithms {refused!r} not supported: "
            f"{', '.join(JWT_ALGORITHMS)}, or HS256 with shared_secret_file"
        )
    if issuer.shared_secret_file:
        if tuple(issuer.algorithms) != ("HS256",):
            raise ConfigError(f"{where}: a shared secret verifies HS256 only")
        if len(Path(issuer.shared_secret_file).read_bytes().strip()) < MIN_SHARED_SECRET_BYTES:
            raise ConfigError(
                f"{where}: shared_secret_file holds fewer than {MIN_SHARED_SECRET_BYTES} bytes"
            )
    elif "HS256" in issuer.algorithms:
        raise ConfigError(
            f"{where}: HS256 needs shared_secret_file, and never goes with a JWKS "
            "(a public key used as an HMAC secret is the key-confusion attack)"
        )
    if not 0 <= issuer.leeway_s <= 300:
        raise ConfigError(f"{where}: leeway_s {issuer.leeway_s} is not between 0 and 300")
    for entry in issuer.detail_claims:
        name, _, claim = entry.rpartition("=")
        if not claim or (_ and not name):
            raise ConfigError(f"{where}: detail_claims entry {entry!r}: claim or name=claim")


def _validate_jwt(jwt: JwtSettings) -> None:
    seen: dict[str, str] = {}
    for number, issuer in enumerate(jwt.issuers, 1):
        _validate_issuer(f"jwt.issuers[{number}]", issuer)
        if issuer.issuer in seen or issuer.name in seen.values():
            raise ConfigError(
                f"jwt issuer {issuer.name!r}: another issuer has the same name or iss "
                f"{issuer.issuer!r}"
            )
        seen[issuer.issuer] = issuer.name
    for key, value in (
        ("refresh_s", jwt.refresh_s),
        ("unknown_kid_interval_s", jwt.unknown_kid_interval_s),
        ("fetch_timeout_s", jwt.fetch_timeout_s),
    ):
        if value <= 0:
            raise ConfigError(f"config key jwt.{key}: {value} must be positive")
    if jwt.keys_max_age_s < jwt.refresh_s:
        raise ConfigError(
            f"config key jwt.keys_max_age_s: {jwt.keys_max_age_s} is shorter than "
            f"jwt.refresh_s ({jwt.refresh_s}): keys would expire before their refresh"
        )
    if jwt.cache_entries < 0:
        raise ConfigError(f"config key jwt.cache_entries: {jwt.cache_entries} must not be negative")


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


def _validate_opa_credentials(policy: PolicySettings) -> None:
    if policy.opa_token and policy.opa_token_file:
        raise ConfigError(
            "policy.opa_token and policy.opa_token_file are both set: pick one "
            "(the file keeps the token out of the environment)"
        )
    if (policy.opa_token or policy.opa_token_file or policy.opa_ca_file) and not policy.opa_url:
        raise ConfigError(
            "policy.opa_token, opa_token_file and opa_ca_file are for a remote OPA "
            "(policy.opa_url); the supervised OPA is reachable only by modgate and needs none"
        )
    if policy.opa_log_level not in OPA_LOG_LEVELS:
        raise ConfigError(
            f"config key policy.opa_log_level: {policy.opa_log_level!r} is not one of "
            f"{', '.join(OPA_LOG_LEVELS)}"
        )
    if policy.opa_url and (policy.decision_logs or policy.opa_log_level != DEFAULT_OPA_LOG_LEVEL):
        raise ConfigError(
            "policy.opa_log_level and policy.decision_logs are for the supervised OPA; a "
            "remote OPA (policy.opa_url) logs as its own command line and configuration say"
        )
    for key, path in (
        ("opa_token_file", policy.opa_token_file),
        ("opa_ca_file", policy.opa_ca_file),
    ):
        if path and not Path(path).is_file():
            raise ConfigError(f"config key policy.{key}: no such file {path!r}")
    if policy.opa_ca_file and not policy.opa_url.startswith("https://"):
        raise ConfigError("config key policy.opa_ca_file: only for an https policy.opa_url")


def _validate_observability(settings: Settings) -> None:
    if settings.log.format not in LOG_FORMATS:
        raise ConfigError(f"config key log.format: {settings.log.format!r} is not text or json")
    if settings.log.level not in LOG_LEVELS:
        raise ConfigError(
            f"config key log.level: {settings.log.level!r} is not one of {', '.join(LOG_LEVELS)}"
        )
    if settings.metrics.listen:
        host, port = listen_address(settings.metrics.listen)
        if port == settings.server.port and host == settings.server.host:
            raise ConfigError(
                f"config key metrics.listen: {settings.metrics.listen!r} is the main listener "
                "(server.host, server.port)"
            )


def _check_client_certificates(tls: TlsSettings, identity: IdentitySettings) -> None:
    if tls.client_cert not in CLIENT_CERT_MODES:
        raise ConfigError(
            f"config key tls.client_cert: {tls.client_cert!r} is not none, optional or required"
        )
    if tls.client_cert != "none" and tls.plain_http:
        raise ConfigError("tls.client_cert needs TLS: it contradicts tls.plain_http = true")
    if tls.client_cert != "none" and not tls.client_ca_file:
        raise ConfigError(
            f"tls.client_cert = {tls.client_cert!r} needs tls.client_ca_file: "
            "the CAs whose client certificates are accepted"
        )
    if tls.client_cert == "none" and tls.client_ca_file:
        raise ConfigError(
            "tls.client_ca_file is set but tls.client_cert is none: no client is asked for a "
            "certificate; set tls.client_cert to optional or required"
        )
    if tls.client_crl_file and tls.client_cert == "none":
        raise ConfigError("tls.client_crl_file is set but tls.client_cert is none")
    certificates = tls.client_cert != "none" or identity.forwarded_client_cert
    for key, path in (
        ("tls.client_deny_serials_file", tls.client_deny_serials_file),
        ("identity.cert_groups_file", identity.cert_groups_file),
    ):
        if path and not certificates:
            raise ConfigError(
                f"{key} is set, but no client certificate is read (tls.client_cert is none "
                "and identity.forwarded_client_cert is off)"
            )
        if path and not Path(path).is_file():
            raise ConfigError(f"config key {key}: no such file {path!r}")
    unknown = [s for s in identity.cert_subject_from if s not in CERT_SUBJECT_SOURCES]
    if unknown or not identity.cert_subject_from:
        raise ConfigError(
            f"config key identity.cert_subject_from: {list(identity.cert_subject_from)!r}: "
            f"a non-empty list of {', '.join(CERT_SUBJECT_SOURCES)}"
        )


def _validate_forwarding(server: ServerSettings, identity: IdentitySettings) -> None:
    try:
        parse_networks(server.trusted_proxies)
    except ValueError as exc:
        raise ConfigError(f"config key server.trusted_proxies: {exc}") from exc
    if identity.forwarded_client_cert and not server.trusted_proxies:
        raise ConfigError(
            "identity.forwarded_client_cert needs server.trusted_proxies: the proxies whose "
            "X-Forwarded-Client-Cert is believed"
        )
    if identity.forwarded_client_cert and not identity.forwarded_ca_file:
        raise ConfigError(
            "identity.forwarded_client_cert needs identity.forwarded_ca_file: the CAs whose "
            "forwarded client certificates are accepted"
        )
    if identity.forwarded_ca_file and not identity.forwarded_client_cert:
        raise ConfigError("identity.forwarded_ca_file is set but forwarded_client_cert is off")
    if identity.forwarded_ca_file and not Path(identity.forwarded_ca_file).is_file():
        raise ConfigError(
            f"config key identity.forwarded_ca_file: no such file {identity.forwarded_ca_file!r}"
        )


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
    for key, path in (
        ("cert_file", tls.cert_file),
        ("key_file", tls.key_file),
        ("client_ca_file", tls.client_ca_file),
        ("client_crl_file", tls.client_crl_file),
    ):
        if path and not Path(path).is_file():
            raise ConfigError(f"config key tls.{key}: no such file {path!r}")
    _check_client_certificates(tls, settings.identity)
    if not 1 <= settings.server.port <= 65535:
        raise ConfigError(f"config key server.port: {settings.server.port} is not a TCP port")
    server = settings.server
    positive = {
        "server.max_connections": server.max_connections,
        "server.header_timeout_s": server.header_timeout_s,
        "server.keep_alive_timeout_s": server.keep_alive_timeout_s,
        "server.send_timeout_s": server.send_timeout_s,
        "server.max_request_line_bytes": server.max_request_line_bytes,
        "server.max_header_bytes": server.max_header_bytes,
        "server.max_headers": server.max_headers,
        "policy.timeout_s": settings.policy.timeout_s,
        "audit.timeout_s": settings.audit.timeout_s,
        "upstream.connect_timeout_s": settings.upstream.connect_timeout_s,
        "upstream.read_timeout_s": settings.upstream.read_timeout_s,
        "upstream.total_timeout_s": settings.upstream.total_timeout_s,
        "upstream.zip_timeout_s": settings.upstream.zip_timeout_s,
        "upstream.max_zip_bytes": settings.upstream.max_zip_bytes,
    }
    not_negative = {
        "identity.token_cache_s": settings.identity.token_cache_s,
        "identity.negative_cache_s": settings.identity.negative_cache_s,
        "identity.failed_auth_per_minute": settings.identity.failed_auth_per_minute,
        "policy.retries": settings.policy.retries,
        "upstream.probe_cache_s": settings.upstream.probe_cache_s,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"config key {key}: {value} must be positive")
    for key, value in not_negative.items():
        if value < 0:
            raise ConfigError(f"config key {key}: {value} must not be negative")
    if settings.sumdb.unknown_status not in (403, 404):
        raise ConfigError(
            f"config key sumdb.unknown_status: {settings.sumdb.unknown_status} must be 403 "
            "(only modgate reaches checksum databases) or 404 (the go command may ask them "
            "directly)"
        )
    _validate_opa_credentials(settings.policy)
    _validate_observability(settings)
    _validate_jwt(settings.jwt)
    _validate_forwarding(settings.server, settings.identity)
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
