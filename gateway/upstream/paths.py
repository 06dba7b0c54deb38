"""The path that asks an upstream the same as a typed request: escaped as the go command does.

Only the upstream stage turns a request back into a path; every other stage holds the
typed ``ModuleRequest``/``SumdbRequest``. The result is relative to a proxy base URL and
percent-encoded once more by ``forwarder.upstream_url``.
"""

from ..errors import MalformedPathError
from ..goproxy.paths import escape_path, escape_version
from ..goproxy.requests import ModuleRequest, SumdbRequest


def upstream_path(target: ModuleRequest | SumdbRequest) -> str:
    """``github.com/!azure/x/@v/v1.0.0.zip``, ``sumdb/sum.golang.org/lookup/m@v1.0.0``, ..."""
    if isinstance(target, SumdbRequest):
        return f"sumdb/{target.database}/{_sumdb_tail(target)}"
    base = escape_path(target.module)
    if target.kind == "list":
        return f"{base}/@v/list"
    if target.kind == "latest":
        return f"{base}/@latest"
    if target.version is None:
        raise MalformedPathError(f"{target.kind} request without a version")
    return f"{base}/@v/{escape_version(target.version)}.{target.kind}"


def _sumdb_tail(target: SumdbRequest) -> str:
    if target.sumdb_kind == "supported":
        return "supported"
    if target.sumdb_kind == "lookup":
        if target.module is None or target.version is None:
            raise MalformedPathError("sumdb lookup without a module and version")
        return f"lookup/{escape_path(target.module)}@{escape_version(target.version)}"
    if target.tile is None:
        raise MalformedPathError("sumdb tile request without its path")
    return target.tile
