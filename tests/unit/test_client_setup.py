"""`modgate client setup`'s planning: the netrc entry the go command will match, the go
settings it changes, and what it refuses to rewrite."""

import pytest

from gateway.client_setup import (
    ServerSettings,
    SetupError,
    go_env_changes,
    netrc_machine,
    netrc_with,
)


@pytest.mark.parametrize(
    ("url", "machine"),
    [
        ("https://modgate.corp.example:8443", "modgate.corp.example:8443"),
        ("https://modgate.corp.example", "modgate.corp.example"),
        ("https://modgate.corp.example:443/", "modgate.corp.example"),
        ("https://[2001:db8::1]:8443", "[2001:db8::1]:8443"),
    ],
)
def test_the_machine_is_what_the_go_command_matches(url: str, machine: str) -> None:
    assert netrc_machine(url) == machine


def test_an_entry_for_the_machine_is_replaced_and_the_rest_kept() -> None:
    text = "# mine\nmachine a.example login me password p\nmachine m:8443 login old password o\n"
    assert netrc_with(text, "m:8443", "alice", "new") == (
        "# mine\nmachine a.example login me password p\nmachine m:8443 login alice password new\n"
    )
    assert netrc_with("", "m:8443", "alice", "t") == "machine m:8443 login alice password t\n"


def test_an_entry_over_several_lines_is_left_to_its_author() -> None:
    with pytest.raises(SetupError, match="spans several lines"):
        netrc_with("machine m:8443\n  login a\n  password b\n", "m:8443", "alice", "t")


def test_the_go_settings_changed_are_only_those_that_differ() -> None:
    server = ServerSettings("https://m:8443", "alice", ("corp.example.com/*", "git.corp/x"))
    changes = go_env_changes({"GOPROXY": "https://m:8443", "GOAUTH": ""}, server)
    assert [(c.key, c.old, c.new) for c in changes] == [
        ("GOAUTH", "", "netrc"),
        ("GONOSUMDB", "", "corp.example.com/*,git.corp/x"),
    ]
    assert "(was: unset)" in changes[0].describe()


def test_goprivate_gets_gonoproxy_none_so_it_cannot_route_around_modgate() -> None:
    server = ServerSettings("https://m:8443", "alice", ())
    changes = go_env_changes({"GOPRIVATE": "corp.example.com", "GONOSUMDB": "x"}, server)
    assert ("GONOPROXY", "none") in [(c.key, c.new) for c in changes]
    assert ("GONOSUMDB", "x", "") in [(c.key, c.old, c.new) for c in changes]
