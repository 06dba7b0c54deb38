"""Parse a request path into a typed GOPROXY or checksum-database request.

The path given here is the once-percent-decoded path (``decode_request_path``): the go
command sends ``!`` as ``%21``, and an encoded ``%2e%2e`` decodes to ``..``, which the
element rules below reject. Nothing is decoded twice, so ``%252e`` stays a ``%`` and is
rejected too. Control characters (C0, DEL, C1), a backslash and bytes that are not UTF-8
are refused with 400 wherever they appear, before any other stage sees the path. How a
request is asked of an upstream (escaped again) is the upstream stage's business
(``upstream/paths.py``).

Routes (go.dev/ref/mod#goproxy-protocol; cmd/go/internal/modfetch/proxy.go):

    /{module}/@v/list            list
    /{module}/@v/{version}.info  info   (version may be a revision query: master, a hash)
    /{module}/@v/{version}.mod   mod    (canonical version only)
    /{module}/@v/{version}.zip   zip    (canonical version only)
    /{module}/@latest            latest
    /sumdb/{name}/supported | /lookup/{module}@{version} | /tile/...   sumdb
"""

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote_to_bytes

from ..errors import MalformedPathError, NotFoundError, SumdbNotServedError
from ..types import ModulePath, RequestKind, Version
from . import semver
from .paths import check_path_major, unescape_path, unescape_version

SUMDB_PREFIX = "/sumdb/"
MAX_REQUEST_PATH_BYTES = 2048
MAX_SHOWN_SUMDB_NAME = 100
# C0 controls, DEL, C1 controls, backslash, and the lone surrogates that surrogateescape
# makes of bytes that are not UTF-8.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\\\ud800-\udfff]")
_TILE = re.compile(
    r"^tile/[0-9]{1,2}/(?:data|[0-9]{1,3})(?:/x[0-9]{3})*/[0-9]{3}(?:\.p/[0-9]{1,3})?$"
)
_FILE_KINDS: dict[str, RequestKind] = {".info": "info", ".mod": "mod", ".zip": "zip"}

SumdbKind = Literal["supported", "lookup", "tile"]


@dataclass(frozen=True, slots=True)
class ModuleRequest:
    """One GOPROXY request: what module, which version, what is asked for."""

    module: ModulePath
    kind: RequestKind
    version: Version | None = None
    version_is_query: bool = False
    """True for ``.info`` of a revision (``master``, a commit hash): resolved upstream."""

    @property
    def needs_resolution(self) -> bool:
        """A revision query or ``@latest``: the upstream names the version, and the policy is
        asked again about that version before it is served."""
        return self.version_is_query or self.kind == "latest"


@dataclass(frozen=True, slots=True)
class SumdbRequest:
    """One request for the checksum database, proxied at ``/sumdb/{name}/...``."""

    database: str
    sumdb_kind: SumdbKind
    module: ModulePath | None = None
    version: Version | None = None
    tile: str | None = None
    """For a tile request: its validated path below ``/sumdb/{name}/`` (``tile/8/0/001``)."""
    kind: RequestKind = "sumdb"


def decode_request_path(scope: Mapping[str, Any]) -> str:
    """The request path percent-decoded once, from the bytes the client sent.

    uvicorn's ``scope["path"]`` replaces bytes that are not UTF-8 with U+FFFD, which would
    hide them; decoding ``raw_path`` here keeps them (as lone surrogates, surrogateescape),
    so the route stage refuses them and the audit record shows them."""
    raw = scope.get("raw_path")
    if not isinstance(raw, bytes):
        return str(scope.get("path", ""))
    return unquote_to_bytes(raw).decode("utf-8", "surrogateescape")


def _reject_unsafe(path: str) -> str:
    if len(path) > MAX_REQUEST_PATH_BYTES:
        raise MalformedPathError(f"request path longer than {MAX_REQUEST_PATH_BYTES} bytes")
    if _UNSAFE.search(path):
        raise MalformedPathError(
            "control character, backslash or byte that is not UTF-8 in request path"
        )
    if not path.startswith("/") or path.startswith("//"):
        raise MalformedPathError("request path must start with a single '/'")
    return path[1:]


def parse_module_request(path: str) -> ModuleRequest:
    """Parse a GOPROXY path (``/github.com/x/y/@v/v1.2.3.zip``); raise on anything else."""
    rest = _reject_unsafe(path)
    if rest.endswith("/@latest"):
        return ModuleRequest(unescape_path(rest.removesuffix("/@latest")), "latest")
    escaped_module, sep, tail = rest.partition("/@v/")
    if not sep:
        raise MalformedPathError("not a module proxy path: expected /{module}/@v/... or /@latest")
    module = unescape_path(escaped_module)
    if tail == "list":
        return ModuleRequest(module, "list")
    for suffix, file_kind in _FILE_KINDS.items():
        if tail.endswith(suffix):
            kind = file_kind
            version = unescape_version(tail.removesuffix(suffix))
            break
    else:
        raise MalformedPathError(f"unknown request {tail!r}: expected list, .info, .mod or .zip")
    if semver.is_canonical(version):
        why = check_path_major(version, module)
        if why is not None:
            raise MalformedPathError(f"{module}@{version}: invalid version: {why}")
        return ModuleRequest(module, kind, version)
    if kind != "info":
        raise MalformedPathError(f"{module}@{version}: {kind} requests need a canonical version")
    return ModuleRequest(module, kind, version, version_is_query=True)


def parse_request(
    path: str, databases: Collection[str], *, unknown_sumdb_status: int = 403
) -> ModuleRequest | SumdbRequest:
    """The route stage: a GOPROXY or checksum-database path as a typed request.

    A checksum database modgate does not serve is 403 by default, which the go command
    takes as final; ``unknown_sumdb_status`` 404 (``sumdb.unknown_status``) lets it ask that
    database directly."""
    if not path.startswith(SUMDB_PREFIX):
        return parse_module_request(path)
    try:
        return parse_sumdb_request(path, databases)
    except SumdbNotServedError as exc:
        if unknown_sumdb_status == NotFoundError.status:
            raise NotFoundError(exc.reason) from exc
        raise


def parse_sumdb_request(path: str, databases: Collection[str]) -> SumdbRequest:
    """Parse ``/sumdb/{name}/...`` into a SumdbRequest.

    A name not in ``databases`` raises SumdbNotServedError, whose reason tells the
    developer what to set instead (the go command prints it).
    """
    rest = _reject_unsafe(path)
    _, name, tail = [*rest.split("/", 2), "", ""][:3]
    if name not in databases:
        shown = name if len(name) <= MAX_SHOWN_SUMDB_NAME else name[:MAX_SHOWN_SUMDB_NAME] + "..."
        raise SumdbNotServedError(
            f'checksum database "{shown}" is not served by modgate; set GOSUMDB to one it '
            f"serves ({', '.join(sorted(databases))}), or add private module paths to GONOSUMDB"
        )
    if tail == "supported":
        return SumdbRequest(name, "supported")
    if tail.startswith("lookup/"):
        escaped_module, at, escaped_version = tail.removeprefix("lookup/").rpartition("@")
        if not at:
            raise MalformedPathError("sumdb lookup must be lookup/{module}@{version}")
        module = unescape_path(escaped_module)
        version = unescape_version(escaped_version)
        if not semver.is_canonical(version):
            raise MalformedPathError(f"sumdb lookup needs a canonical version, not {version!r}")
        return SumdbRequest(name, "lookup", module, version)
    if _TILE.match(tail):
        return SumdbRequest(name, "tile", tile=tail)
    raise MalformedPathError(f"unknown checksum database request {tail!r}")
