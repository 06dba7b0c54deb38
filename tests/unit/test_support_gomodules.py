"""Self-tests for tests/support/gomodules.py, including a round trip through the real go command."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.support.gomodules import (
    ModuleVersion,
    build_module,
    escape,
    go_env,
    hash1,
    latest,
    unescape,
    write_proxy_tree,
)
from tests.support.upstream import UpstreamServer

HELLO_GO = 'package hello\n\nfunc Hello() string { return "hello" }\n'


@pytest.fixture(scope="module")
def modules(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModuleVersion]:
    work = tmp_path_factory.mktemp("gomod")
    return {
        "hello1": build_module(work, "example.com/hello", "v1.0.0", {"hello.go": HELLO_GO}),
        "hello11": build_module(
            work,
            "example.com/hello",
            "v1.1.0",
            {
                "hello.go": HELLO_GO,
                "internal/x/x.go": "package x\n\nconst X = 1\n",
                "vendor/example.com/dep/dep.go": "package dep\n",
                "nested/go.mod": "module example.com/hello/nested\n",
                "nested/n.go": "package nested\n",
                "LICENSE": "MIT\n",
            },
        ),
        "hello12pre": build_module(work, "example.com/hello", "v1.2.0-rc.1", {"h.go": HELLO_GO}),
        "upper": build_module(
            work, "example.com/Upper/Case", "v1.0.0-Beta", {"c.go": "package c\n"}
        ),
        "v2": build_module(work, "example.com/m/v2", "v2.0.0", {"m.go": "package m\n"}),
    }


def zip_names(mv: ModuleVersion) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(mv.zip)) as zf:
        return zf.namelist()


def test_escape_round_trip() -> None:
    assert escape("example.com/Upper/Case") == "example.com/!upper/!case"
    assert escape("v1.0.0-Beta") == "v1.0.0-!beta"
    assert unescape("example.com/!upper/!case") == "example.com/Upper/Case"
    with pytest.raises(ValueError):
        escape("example.com/bad!path")


def test_hash1_format() -> None:
    # dirhash.Hash1 of a single empty go.mod, computed independently here.
    import base64
    import hashlib

    line = hashlib.sha256(b"").hexdigest() + "  go.mod\n"
    want = "h1:" + base64.b64encode(hashlib.sha256(line.encode()).digest()).decode()
    assert hash1({"go.mod": b""}) == want


def test_latest_prefers_releases() -> None:
    assert latest(["v1.0.0", "v1.2.0-rc.1", "v1.1.0"]) == "v1.1.0"
    assert latest(["v1.2.0-rc.1", "v1.2.0-rc.2", "v1.2.0-rc.10"]) == "v1.2.0-rc.10"


@pytest.mark.gocmd
def test_zip_layout(modules: dict[str, ModuleVersion]) -> None:
    names = zip_names(modules["hello11"])
    assert names == sorted(names)
    assert all(n.startswith("example.com/hello@v1.1.0/") for n in names)
    rel = {n.removeprefix("example.com/hello@v1.1.0/") for n in names}
    assert rel == {"go.mod", "hello.go", "internal/x/x.go", "LICENSE"}  # no vendor, no nested
    mod = modules["hello11"].mod.decode()
    assert mod.startswith("module example.com/hello\n") and "\ngo 1.22\n" in mod
    with zipfile.ZipFile(io.BytesIO(modules["hello11"].zip)) as zf:
        assert zf.read("example.com/hello@v1.1.0/go.mod") == modules["hello11"].mod
    # module path is NOT escaped inside the zip
    assert zip_names(modules["upper"])[0].startswith("example.com/Upper/Case@v1.0.0-Beta/")
    assert "example.com/m/v2@v2.0.0/go.mod" in zip_names(modules["v2"])


@pytest.mark.gocmd
def test_zip_is_deterministic(tmp_path: Path) -> None:
    a = build_module(tmp_path / "a", "example.com/det", "v0.1.0", {"d.go": "package det\n"})
    b = build_module(tmp_path / "b", "example.com/det", "v0.1.0", {"d.go": "package det\n"})
    assert a.zip == b.zip and a.zip_hash() == b.zip_hash()


@pytest.mark.gocmd
def test_build_module_rejects_broken_code(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="go vet"):
        build_module(tmp_path, "example.com/broken", "v1.0.0", {"b.go": "package b\nfunc {"})


@pytest.mark.gocmd
def test_write_proxy_tree(tmp_path: Path, modules: dict[str, ModuleVersion]) -> None:
    write_proxy_tree(
        tmp_path,
        list(modules.values()),
        revision_aliases={("example.com/hello", "master"): "v1.1.0"},
    )
    hello = tmp_path / "example.com/hello"
    assert (hello / "@v/list").read_text() == "v1.0.0\nv1.1.0\nv1.2.0-rc.1\n"
    assert json.loads((hello / "@latest").read_text())["Version"] == "v1.1.0"
    assert json.loads((hello / "@v/master.info").read_text()) == {
        "Version": "v1.1.0",
        "Time": "2024-01-01T00:00:00Z",
    }
    assert (hello / "@v/v1.0.0.zip").read_bytes() == modules["hello1"].zip
    upper = tmp_path / "example.com/!upper/!case/@v"
    assert (upper / "list").read_text() == "v1.0.0-Beta\n"
    assert (upper / "v1.0.0-!beta.mod").read_bytes() == modules["upper"].mod
    assert (tmp_path / "example.com/m/v2/@v/v2.0.0.info").exists()


@pytest.mark.gocmd
def test_go_mod_download_round_trip(tmp_path: Path, modules: dict[str, ModuleVersion]) -> None:
    """The real go command accepts our tree over plain http and agrees on both hashes."""
    tree = tmp_path / "tree"
    write_proxy_tree(
        tree,
        list(modules.values()),
        revision_aliases={("example.com/hello", "master"): "v1.1.0"},
    )
    cache = tmp_path / "gopath"
    with UpstreamServer(tree) as upstream:
        env = go_env(
            GOPROXY=upstream.url,
            GONOSUMDB="example.com",
            GOFLAGS="-modcacherw",
            GOMODCACHE=str(cache / "pkg/mod"),
            GOPATH=str(cache),
            GOTOOLCHAIN="local",
        )
        for mv, query in [
            (modules["hello1"], "v1.0.0"),
            (modules["upper"], "v1.0.0-Beta"),
            (modules["v2"], "v2.0.0"),
            (modules["hello11"], "master"),
        ]:
            proc = subprocess.run(
                ["go", "mod", "download", "-json", f"{mv.path}@{query}"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            assert proc.returncode == 0, proc.stdout + proc.stderr
            got = json.loads(proc.stdout)
            assert got["Version"] == mv.version
            assert got["Sum"] == mv.zip_hash()
            assert got["GoModSum"] == mv.mod_hash()
        paths = upstream.paths()
    assert "/example.com/hello/@v/v1.0.0.zip" in paths
    # the go command percent-encodes the "!" of escaped paths; the raw log keeps that form
    assert "/example.com/%21upper/%21case/@v/v1.0.0-%21beta.zip" in paths
    assert "/example.com/hello/@v/master.info" in paths
    assert not any(p.startswith("/sumdb/") for p in paths)  # GONOSUMDB honoured
