"""Request paths become typed requests; anything else is refused before any upstream."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import MalformedPathError, SumdbNotServedError
from gateway.goproxy.requests import (
    ModuleRequest,
    SumdbRequest,
    parse_module_request,
    parse_sumdb_request,
)
from gateway.upstream.paths import upstream_path

ROUTES = [
    ("/github.com/x/y/@v/list", ModuleRequest("github.com/x/y", "list")),
    ("/github.com/x/y/@latest", ModuleRequest("github.com/x/y", "latest")),
    ("/github.com/x/y/@v/v1.2.3.info", ModuleRequest("github.com/x/y", "info", "v1.2.3")),
    ("/github.com/x/y/@v/v1.2.3.mod", ModuleRequest("github.com/x/y", "mod", "v1.2.3")),
    ("/github.com/x/y/@v/v1.2.3.zip", ModuleRequest("github.com/x/y", "zip", "v1.2.3")),
    (
        "/github.com/!burnt!sushi/toml/@v/v1.0.0.zip",
        ModuleRequest("github.com/BurntSushi/toml", "zip", "v1.0.0"),
    ),
    (
        "/example.com/m/@v/v2.0.0+incompatible.zip",
        ModuleRequest("example.com/m", "zip", "v2.0.0+incompatible"),
    ),
    (
        "/example.com/m/@v/v0.0.0-20240101000000-abcdefabcdef.mod",
        ModuleRequest("example.com/m", "mod", "v0.0.0-20240101000000-abcdefabcdef"),
    ),
    (
        "/example.com/m/@v/master.info",
        ModuleRequest("example.com/m", "info", "master", version_is_query=True),
    ),
    (
        "/example.com/m/@v/4f2c1d0a9b8e.info",
        ModuleRequest("example.com/m", "info", "4f2c1d0a9b8e", version_is_query=True),
    ),
]


@pytest.mark.parametrize(("path", "expected"), ROUTES, ids=[p for p, _ in ROUTES])
def test_goproxy_paths_parse_to_typed_requests(path: str, expected: ModuleRequest) -> None:
    parsed = parse_module_request(path)
    assert parsed == expected
    assert "/" + upstream_path(parsed) == path


BAD = [
    "/example.com/../etc/@v/list",
    "/example.com/%2e%2e/@v/list",
    "/example.com/..%2fetc/@v/list",
    "//example.com/m/@v/list",
    "/example.com//m/@v/list",
    "/example.com\\m/@v/list",
    "/example.com/m/@v/list\x00",
    "/example.com/m\r\nX-Injected: 1/@v/list",
    "/example.com/m/@v/master.zip",
    "/example.com/m/@v/v1.2.mod",
    "/example.com/m/@v/v2.0.0.zip",
    "/example.com/m/@v/../../x.info",
    "/example.com/m/@v/v1.0.0.tar",
    "/example.com/m/@v/",
    "/example.com/m",
    "/",
    "/example.com/M/@v/list",
    "/example.com/" + "a" * 3000 + "/@v/list",
]


@pytest.mark.parametrize("path", BAD, ids=range(len(BAD)))
def test_malformed_paths_are_refused(path: str) -> None:
    with pytest.raises(MalformedPathError):
        parse_module_request(path)


@given(st.text(alphabet=st.sampled_from("./\\%2e!aZ@v\x00-"), max_size=40))
def test_no_accepted_path_contains_traversal(tail: str) -> None:
    try:
        parsed = parse_module_request("/example.com/" + tail)
    except MalformedPathError:
        return
    elements = parsed.module.split("/")
    assert ".." not in elements and "." not in elements
    assert "\\" not in upstream_path(parsed)


DATABASES = frozenset({"sum.golang.org"})


def test_sumdb_lookup_is_parsed_and_reescaped() -> None:
    req = parse_sumdb_request(
        "/sumdb/sum.golang.org/lookup/github.com/!burnt!sushi/toml@v1.0.0", DATABASES
    )
    assert req == SumdbRequest("sum.golang.org", "lookup", "github.com/BurntSushi/toml", "v1.0.0")
    assert upstream_path(req) == "sumdb/sum.golang.org/lookup/github.com/!burnt!sushi/toml@v1.0.0"


@pytest.mark.parametrize(
    "tail", ["supported", "tile/8/0/000", "tile/8/1/x123/456.p/7", "tile/8/data/x001/234"]
)
def test_sumdb_supported_and_tiles_pass(tail: str) -> None:
    parsed = parse_sumdb_request(f"/sumdb/sum.golang.org/{tail}", DATABASES)
    assert upstream_path(parsed) == f"sumdb/sum.golang.org/{tail}"


def test_unknown_checksum_database_is_refused_with_what_to_set_instead() -> None:
    with pytest.raises(SumdbNotServedError) as refused:
        parse_sumdb_request("/sumdb/evil.example.com/supported", DATABASES)
    assert refused.value.status == 403
    assert refused.value.reason == (
        'checksum database "evil.example.com" is not served by modgate; set GOSUMDB to one '
        f"it serves ({next(iter(DATABASES))}), or add private module paths to GONOSUMDB"
    )


def test_a_long_unknown_checksum_database_name_is_shortened_in_the_reason() -> None:
    with pytest.raises(SumdbNotServedError) as refused:
        parse_sumdb_request(f"/sumdb/{'x' * 1000}/supported", DATABASES)
    assert f'"{"x" * 100}..."' in refused.value.reason


@pytest.mark.parametrize(
    "tail", ["tile/../x", "lookup/example.com/m", "lookup/example.com/m@master", "latest", ""]
)
def test_bad_sumdb_requests_are_refused(tail: str) -> None:
    with pytest.raises(MalformedPathError):
        parse_sumdb_request(f"/sumdb/sum.golang.org/{tail}", DATABASES)


_valid_elem = st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True)
_attack = st.sampled_from(
    ["..", ".", "", "a\\b", "a\x00b", "a\nb", "a\x7fb", "a%2eb", "%2e%2e", "a b", "x" * 3000]
)


@given(
    st.lists(_valid_elem, min_size=1, max_size=4),
    _attack,
    st.integers(0, 4),
    st.sampled_from(["list", "v1.0.0.zip", "v1.0.0.info", "master.info"]),
)
def test_any_path_with_a_traversal_or_bad_element_is_refused(
    elems: list[str], attack: str, where: int, tail: str
) -> None:
    elems = [*elems[:where], attack, *elems[where:]]
    path = "/" + "/".join(["example.com", *elems]) + "/@v/" + tail
    with pytest.raises(MalformedPathError):
        parse_module_request(path)


@given(_attack)
def test_a_bad_version_element_is_refused(attack: str) -> None:
    for suffix in (".info", ".mod", ".zip"):
        with pytest.raises(MalformedPathError):
            parse_module_request(f"/example.com/m/@v/{attack}/x{suffix}")
