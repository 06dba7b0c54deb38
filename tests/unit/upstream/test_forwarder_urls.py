"""Upstream URLs are encoded once, the way the go command encodes them (net/url)."""

import pytest

from gateway.goproxy.requests import parse_module_request
from gateway.upstream.forwarder import redact, upstream_url
from gateway.upstream.paths import upstream_path


@pytest.mark.parametrize(
    ("request_path", "sent"),
    [
        ("/github.com/!burnt!sushi/toml/@v/list", "/github.com/%21burnt%21sushi/toml/@v/list"),
        ("/example.com/m/@v/a%2eb.info", "/example.com/m/@v/a%252eb.info"),
        ("/example.com/m/@v/feature branch.info", "/example.com/m/@v/feature%20branch.info"),
        ("/example.com/m/@v/v1.0.0+incompatible.zip", "/example.com/m/@v/v1.0.0+incompatible.zip"),
    ],
)
def test_upstream_path_is_encoded_like_the_go_command(request_path: str, sent: str) -> None:
    path = upstream_path(parse_module_request(request_path))
    url = upstream_url("https://mirror.example/base/", path)
    assert url.raw_path == "/base" + sent


def test_redact_drops_user_info() -> None:
    assert redact("https://user:secret@mirror.example:8443/p") == "https://mirror.example:8443/p"
