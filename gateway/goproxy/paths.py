"""Module paths and versions, checked and escaped exactly as golang.org/x/mod/module does.

The go command writes every uppercase letter of a module path or version in a URL as
``!`` + lowercase (``github.com/BurntSushi/toml`` → ``github.com/!burnt!sushi/toml``).
``unescape_path``/``unescape_version`` undo it and validate; ``escape_*`` redo it for the
upstream URL, so what we forward is exactly what a well-behaved go command would send.
"""

from ..errors import MalformedPathError
from . import semver

MAX_PATH_BYTES = 1024
"""Longest escaped module path accepted; real ones are far shorter (bounds work per request)."""
MAX_VERSION_BYTES = 256

_MOD_PATH_PUNCT = frozenset("-._~")
_FIRST_ELEM_OK = frozenset("-.0123456789abcdefghijklmnopqrstuvwxyz")
_FILE_NAME_PUNCT = frozenset("!#$%&()+,-.=@[]^_{}~ ")
_BAD_WINDOWS_NAMES = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{i}" for i in range(1, 10)]
    + [f"LPT{i}" for i in range(1, 10)]
)


def _is_ascii_alnum(ch: str) -> bool:
    return ("0" <= ch <= "9") or ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def _mod_path_ok(ch: str) -> bool:
    return _is_ascii_alnum(ch) or ch in _MOD_PATH_PUNCT


def _file_name_ok(ch: str) -> bool:
    if ch < "\x80":
        return _is_ascii_alnum(ch) or ch in _FILE_NAME_PUNCT
    return ch.isalpha()


def _check_elem(elem: str, *, file_name: bool) -> str | None:
    """Return why ``elem`` is not a valid path element, or None (x/mod checkElem)."""
    if elem == "":
        return "empty path element"
    if elem.count(".") == len(elem):
        return f"invalid path element {elem!r}"
    if elem[0] == "." and not file_name:
        return "leading dot in path element"
    if elem[-1] == ".":
        return "trailing dot in path element"
    ok = _file_name_ok if file_name else _mod_path_ok
    for ch in elem:
        if not ok(ch):
            return f"invalid char {ch!r}"
    short = elem.split(".", 1)[0]
    if short.upper() in _BAD_WINDOWS_NAMES:
        return f"{short!r} disallowed as path element component on Windows"
    if not file_name:
        tilde = short.rfind("~")
        if 0 <= tilde < len(short) - 1 and short[tilde + 1 :].isdigit():
            return "trailing tilde and digits in path element"
    return None


def split_path_major(path: str) -> tuple[str, str] | None:
    """Split ``path`` into (prefix, pathMajor) like module.SplitPathVersion; None if invalid."""
    if path.startswith("gopkg.in/"):
        return _split_gopkg_in(path)
    i = len(path)
    dot = False
    while i > 0 and ((path[i - 1].isdigit() and path[i - 1].isascii()) or path[i - 1] == "."):
        dot = dot or path[i - 1] == "."
        i -= 1
    if i <= 1 or i == len(path) or path[i - 1] != "v" or path[i - 2] != "/":
        return path, ""
    prefix, major = path[: i - 2], path[i - 2 :]
    if dot or len(major) <= 2 or major[2] == "0" or major == "/v1":
        return None
    return prefix, major


def _split_gopkg_in(path: str) -> tuple[str, str] | None:
    i = len(path)
    if path.endswith("-unstable"):
        i -= len("-unstable")
    while i > 0 and path[i - 1].isascii() and path[i - 1].isdigit():
        i -= 1
    if i <= 1 or path[i - 1] != "v" or path[i - 2] != ".":
        return None
    prefix, major = path[: i - 2], path[i - 2 :]
    if len(major) <= 2 or (major[2] == "0" and major != ".v0"):
        return None
    return prefix, major


def check_path(path: str) -> str | None:
    """Return why ``path`` is not a valid module path, or None (module.CheckPath)."""
    if path == "":
        return "empty string"
    if path[0] == "-":
        return "leading dash"
    if "//" in path:
        return "double slash"
    if path[-1] == "/":
        return "trailing slash"
    for elem in path.split("/"):
        why = _check_elem(elem, file_name=False)
        if why is not None:
            return why
    first = path.split("/", 1)[0]
    if "." not in first:
        return "missing dot in first path element"
    for ch in first:
        if ch not in _FIRST_ELEM_OK:
            return f"invalid char {ch!r} in first path element"
    if split_path_major(path) is None:
        return "invalid version"
    return None


def check_path_major(version: str, path: str) -> str | None:
    """Return why ``version`` cannot belong to module ``path``, or None (CheckPathMajor)."""
    split = split_path_major(path)
    major = "" if split is None else split[1]
    if major.startswith(".v") and major.endswith("-unstable"):
        major = major.removesuffix("-unstable")
    if version.startswith("v0.0.0-") and major == ".v1":
        return None
    m = semver.major(version)
    if major == "":
        if m in ("v0", "v1") or version.endswith(semver.INCOMPATIBLE):
            return None
        return f"should be v0 or v1, not {m}"
    if m == major[1:]:
        return None
    return f"should be {major[1:]}, not {m}"


def _unescape(escaped: str) -> str | None:
    out: list[str] = []
    bang = False
    for ch in escaped:
        if ch >= "\x80":
            return None
        if bang:
            bang = False
            if not "a" <= ch <= "z":
                return None
            out.append(ch.upper())
            continue
        if ch == "!":
            bang = True
            continue
        if "A" <= ch <= "Z":
            return None
        out.append(ch)
    return None if bang else "".join(out)


def _escape(s: str) -> str:
    return "".join("!" + ch.lower() if "A" <= ch <= "Z" else ch for ch in s)


def unescape_path(escaped: str) -> str:
    """Return the module path an escaped URL segment names; raise MalformedPathError."""
    if len(escaped) > MAX_PATH_BYTES:
        raise MalformedPathError(f"module path longer than {MAX_PATH_BYTES} bytes")
    path = _unescape(escaped)
    if path is None:
        raise MalformedPathError(f"invalid escaped module path {escaped!r}")
    why = check_path(path)
    if why is not None:
        raise MalformedPathError(f"malformed module path {path!r}: {why}")
    return path


def unescape_version(escaped: str) -> str:
    """Return the version an escaped URL segment names (any valid file name, as x/mod)."""
    if len(escaped) > MAX_VERSION_BYTES:
        raise MalformedPathError(f"version longer than {MAX_VERSION_BYTES} bytes")
    version = _unescape(escaped)
    if version is None:
        raise MalformedPathError(f"invalid escaped version {escaped!r}")
    why = _check_elem(version, file_name=True)
    if why is not None:
        raise MalformedPathError(f"invalid version {version!r}: {why}")
    return version


def escape_path(path: str) -> str:
    """Return the URL form of a valid module path (module.EscapePath)."""
    why = check_path(path)
    if why is not None:
        raise MalformedPathError(f"malformed module path {path!r}: {why}")
    return _escape(path)


def escape_version(version: str) -> str:
    """Return the URL form of a version (module.EscapeVersion: a file name without ``!``)."""
    why = _check_elem(version, file_name=True)
    if why is not None or "!" in version or not version.isascii():
        raise MalformedPathError(f"invalid version {version!r}: disallowed version string")
    return _escape(version)
