"""Semantic versions as golang.org/x/mod/semver and module/pseudo.go define them.

Only what the gateway needs: validity, canonical form, major version, pseudo-version
recognition, and the order ``compare`` (semver.Compare) that picks the newest allowed
version of a list the way the go command does; what a version is *allowed* to be is the
policy's (Rego's ``semver`` builtins).
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

_NUM = r"(?:0|[1-9][0-9]*)"
_PRE_IDENT = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_BUILD_IDENT = r"[0-9A-Za-z-]+"
_SEMVER_RE = re.compile(
    rf"^v(?P<major>{_NUM})(?:\.(?P<minor>{_NUM})(?:\.(?P<patch>{_NUM})"
    rf"(?P<pre>-{_PRE_IDENT}(?:\.{_PRE_IDENT})*)?"
    rf"(?P<build>\+{_BUILD_IDENT}(?:\.{_BUILD_IDENT})*)?)?)?$"
)
# The same expression as x/mod/module's pseudoVersionRE.
_PSEUDO_RE = re.compile(
    r"^v[0-9]+\.(0\.0-|\d+\.\d+-([^+]*\.)?0\.)\d{14}-[A-Za-z0-9]+"
    r"(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$",
    re.ASCII,
)
INCOMPATIBLE = "+incompatible"


@dataclass(frozen=True, slots=True)
class _Parsed:
    major: str
    minor: str
    patch: str
    pre: str
    build: str
    short: bool


def _parse(v: str) -> _Parsed | None:
    m = _SEMVER_RE.match(v)
    if m is None:
        return None
    minor, patch = m.group("minor"), m.group("patch")
    return _Parsed(
        major=m.group("major"),
        minor=minor or "0",
        patch=patch or "0",
        pre=m.group("pre") or "",
        build=m.group("build") or "",
        short=patch is None,
    )


def is_valid(v: str) -> bool:
    """Report whether ``v`` is a semantic version (``v1``, ``v1.2`` count, as in x/mod)."""
    return _parse(v) is not None


def canonical(v: str) -> str:
    """Return the canonical form of ``v`` (``v1.2`` → ``v1.2.0``), keeping ``+incompatible``.

    Returns "" when ``v`` is not a semantic version, like module.CanonicalVersion.
    """
    p = _parse(v)
    if p is None:
        return ""
    keep = INCOMPATIBLE if p.build == INCOMPATIBLE else ""
    return f"v{p.major}.{p.minor}.{p.patch}{p.pre}{keep}"


def is_canonical(v: str) -> bool:
    """Report whether ``v`` is already canonical: what .mod and .zip requests must carry."""
    return v != "" and canonical(v) == v


def major(v: str) -> str:
    """Return ``vN`` for a valid version, else ""."""
    p = _parse(v)
    return "" if p is None else f"v{p.major}"


def is_pseudo(v: str) -> bool:
    """Report whether ``v`` is a pseudo-version (module.IsPseudoVersion)."""
    return v.count("-") >= 2 and is_valid(v) and _PSEUDO_RE.match(v) is not None


def _compare_numbers(a: str, b: str) -> int:
    """Decimal strings without leading zeros: the longer is the larger."""
    if len(a) != len(b):
        return -1 if len(a) < len(b) else 1
    return (a > b) - (a < b)


def _compare_pre(a: str, b: str) -> int:
    """Pre-release order (semver.org 11): none sorts after any; identifiers one by one,
    numeric below alphanumeric, numbers by value; a prefix sorts first."""
    if a == b:
        return 0
    if not a or not b:
        return 1 if not a else -1
    left, right = a[1:].split("."), b[1:].split(".")
    for x, y in zip(left, right, strict=False):
        if x == y:
            continue
        x_num, y_num = x.isdigit(), y.isdigit()
        if x_num and y_num:
            return _compare_numbers(x, y)
        if x_num != y_num:
            return -1 if x_num else 1
        return -1 if x < y else 1
    return -1 if len(left) < len(right) else 1


def compare(v: str, w: str) -> int:
    """-1, 0 or 1 as ``v`` sorts before, with or after ``w`` (x/mod/semver.Compare: an
    invalid version sorts before every valid one; build metadata is ignored)."""
    p, q = _parse(v), _parse(w)
    if p is None or q is None:
        return (p is not None) - (q is not None)
    for a, b in ((p.major, q.major), (p.minor, q.minor), (p.patch, q.patch)):
        if (order := _compare_numbers(a, b)) != 0:
            return order
    return _compare_pre(p.pre, q.pre)


def newest(versions: Iterable[str]) -> str | None:
    """The version the go command's ``@latest`` takes from a list: the newest release, or
    without one the newest pre-release; None for no valid version."""
    valid = [v for v in versions if is_valid(v)]
    releases = [v for v in valid if not _parse(v).pre]  # type: ignore[union-attr]
    pool = releases or valid
    if not pool:
        return None
    best = pool[0]
    for version in pool[1:]:
        if compare(version, best) > 0:
            best = version
    return best
