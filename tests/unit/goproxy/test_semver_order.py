"""The order the gateway picks the newest allowed version by: x/mod/semver.Compare's, and
the go command's preference for a release over any pre-release."""

import itertools

import pytest

from gateway.goproxy.semver import compare, newest

# semver.org section 11's example, then numbers that sort by value, not as text.
ASCENDING = [
    "v1.0.0-alpha",
    "v1.0.0-alpha.1",
    "v1.0.0-alpha.beta",
    "v1.0.0-beta",
    "v1.0.0-beta.2",
    "v1.0.0-beta.11",
    "v1.0.0-rc.1",
    "v1.0.0",
    "v1.2.0",
    "v1.10.0",
    "v2.0.0+incompatible",
    "v10.0.0",
]


def test_compare_orders_as_semver_does() -> None:
    for (i, a), (j, b) in itertools.product(enumerate(ASCENDING), repeat=2):
        assert compare(a, b) == (i > j) - (i < j), (a, b)


@pytest.mark.parametrize(
    ("v", "w", "order"),
    [
        ("v1.0.0+build", "v1.0.0", 0),  # build metadata is ignored
        ("v1.2", "v1.2.0", 0),  # a short version is its canonical form
        ("garbage", "v0.0.1", -1),  # an invalid version sorts first
        ("garbage", "junk", 0),
        ("v0.0.0-20240101000000-abcdefabcdef", "v0.0.0", -1),  # a pseudo-version is a pre-release
    ],
)
def test_compare_edges(v: str, w: str, order: int) -> None:
    assert compare(v, w) == order


def test_newest_prefers_a_release_then_the_newest_pre_release() -> None:
    assert newest(["v1.5.0", "v1.6.0-rc.1", "v1.4.9", "v1.10.0-beta"]) == "v1.5.0"
    assert newest(["v1.6.0-rc.1", "v1.6.0-rc.2", "nonsense"]) == "v1.6.0-rc.2"
    assert newest(["nonsense"]) is None and newest([]) is None
