"""Module path and version rules, escaping, as golang.org/x/mod/module defines them."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import MalformedPathError
from gateway.goproxy.paths import (
    check_path,
    check_path_major,
    escape_path,
    escape_version,
    unescape_path,
    unescape_version,
)

VALID_PATHS = [
    "github.com/x/y",
    "example.com/Upper/Case",
    "gopkg.in/yaml.v3",
    "example.com/m/v2",
    "golang.org/toolchain",
    "a.b/c~d_e-f.g",
]
INVALID_PATHS = [
    ("", "empty string"),
    ("-x.com/y", "leading dash"),
    ("example.com//y", "double slash"),
    ("example.com/y/", "trailing slash"),
    ("example.com/../y", "invalid path element"),
    ("example.com/./y", "invalid path element"),
    ("example.com/.hidden", "leading dot"),
    ("example.com/y.", "trailing dot"),
    ("nodot/y", "missing dot"),
    ("Example.com/y", "first path element"),
    ("example.com/a b", "invalid char"),
    ("example.com/a%2e", "invalid char"),
    ("example.com/a\\b", "invalid char"),
    ("example.com/con", "Windows"),
    ("example.com/abc~1", "tilde"),
    ("example.com/m/v1", "invalid version"),
    ("example.com/m/v0", "invalid version"),
    ("example.com/m/v2.1", "invalid version"),
    ("example.com/ünïcode", "invalid char"),
]


@pytest.mark.parametrize("path", VALID_PATHS)
def test_valid_module_path_is_accepted(path: str) -> None:
    assert check_path(path) is None


@pytest.mark.parametrize(("path", "why"), INVALID_PATHS, ids=[p for p, _ in INVALID_PATHS])
def test_invalid_module_path_is_rejected_with_its_reason(path: str, why: str) -> None:
    reason = check_path(path)
    assert reason is not None
    assert why in reason


@pytest.mark.parametrize(
    ("path", "escaped"),
    [
        ("github.com/BurntSushi/toml", "github.com/!burnt!sushi/toml"),
        ("example.com/Upper/Case", "example.com/!upper/!case"),
        ("github.com/x/y", "github.com/x/y"),
    ],
)
def test_escape_path_writes_uppercase_as_bang_lowercase(path: str, escaped: str) -> None:
    assert escape_path(path) == escaped
    assert unescape_path(escaped) == path


@pytest.mark.parametrize(
    "escaped",
    ["github.com/BurntSushi/toml", "example.com/!", "example.com/!1x", "example.com/!!a"],
)
def test_unescape_rejects_uppercase_and_bad_bangs(escaped: str) -> None:
    with pytest.raises(MalformedPathError):
        unescape_path(escaped)


def test_version_with_uppercase_round_trips() -> None:
    assert escape_version("v1.0.0-RC1") == "v1.0.0-!r!c1"
    assert unescape_version("v1.0.0-!r!c1") == "v1.0.0-RC1"


@pytest.mark.parametrize("version", ["..", "a/b", "v1\x00", "v1!", "", "v1/", "vé"])
def test_escape_version_rejects_what_x_mod_rejects(version: str) -> None:
    with pytest.raises(MalformedPathError):
        escape_version(version)


@pytest.mark.parametrize(
    ("version", "path", "ok"),
    [
        ("v1.2.3", "example.com/m", True),
        ("v2.0.0+incompatible", "example.com/m", True),
        ("v2.0.0", "example.com/m", False),
        ("v2.1.0", "example.com/m/v2", True),
        ("v1.0.0", "example.com/m/v2", False),
        ("v3.0.0", "gopkg.in/yaml.v3", True),
        ("v0.0.0-20200101000000-abcdefabcdef", "gopkg.in/check.v1", True),
    ],
)
def test_version_must_match_the_path_major(version: str, path: str, ok: bool) -> None:
    assert (check_path_major(version, path) is None) is ok


def test_overlong_path_is_rejected_before_any_work() -> None:
    with pytest.raises(MalformedPathError, match="longer than"):
        unescape_path("example.com/" + "a" * 5000)


# Property tests: any valid path survives escape/unescape; nothing escaped keeps uppercase.
_elem = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_~-]{0,10}", fullmatch=True)
_domain = st.from_regex(r"[a-z0-9]{1,8}\.[a-z]{2,5}", fullmatch=True)


@given(_domain, st.lists(_elem, min_size=0, max_size=4))
def test_escape_unescape_round_trip(domain: str, elems: list[str]) -> None:
    path = "/".join([domain, *elems])
    if check_path(path) is not None:
        return  # e.g. a Windows name or a /vN tail the rules reject; covered by tables
    escaped = escape_path(path)
    assert escaped == escaped.lower()
    assert unescape_path(escaped) == path


@given(st.text(max_size=60))
def test_unescape_never_returns_an_invalid_path(text: str) -> None:
    try:
        path = unescape_path(text)
    except MalformedPathError:
        return
    assert check_path(path) is None
    assert ".." not in path.split("/")
    assert "\\" not in path and "//" not in path
