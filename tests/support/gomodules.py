"""Build real Go modules and lay them out as a GOPROXY directory tree.

`build_module` runs the real go command to create and compile a module, then writes its
zip following golang.org/x/mod/zip rules; `write_proxy_tree` lays versions out the way a
module proxy serves them (`<escaped module>/@v/list`, `.info`, `.mod`, `.zip`, `@latest`).
Hashes match what the go command records in go.sum (dirhash Hash1, "h1:").
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TIME = "2024-01-01T00:00:00Z"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_VCS_DIRS = {".bzr", ".git", ".hg", ".svn"}
_SEMVER = re.compile(r"^v(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?$")


def escape(s: str) -> str:
    """golang.org/x/mod/module EscapePath/EscapeVersion: "A" becomes "!a"."""
    if "!" in s or not s.isascii():
        raise ValueError(f"cannot escape {s!r}: '!' and non-ASCII are not allowed")
    return "".join("!" + c.lower() if "A" <= c <= "Z" else c for c in s)


def unescape(s: str) -> str:
    """Inverse of `escape`: "!a" becomes "A"."""
    return re.sub(r"!([a-z])", lambda m: m.group(1).upper(), s)


def hash1(files: dict[str, bytes]) -> str:
    """x/mod/sumdb/dirhash Hash1 over {name: content}."""
    summary = hashlib.sha256()
    for name in sorted(files, key=lambda n: n.encode()):
        if "\n" in name:
            raise ValueError(f"dirhash: file name with newline: {name!r}")
        line = f"{hashlib.sha256(files[name]).hexdigest()}  {name}\n"
        summary.update(line.encode())
    return "h1:" + base64.b64encode(summary.digest()).decode()


@dataclass(frozen=True)
class ModuleVersion:
    """One module version as a proxy serves it."""

    path: str
    version: str
    time: str  # RFC3339, UTC
    mod: bytes
    zip: bytes

    def zip_hash(self) -> str:
        """The go.sum hash of the zip (`<module> <version> h1:...`)."""
        with zipfile.ZipFile(io.BytesIO(self.zip)) as zf:
            files = {info.filename: zf.read(info) for info in zf.infolist()}
        return hash1(files)

    def mod_hash(self) -> str:
        """The go.sum hash of the go.mod file (`<module> <version>/go.mod h1:...`)."""
        return hash1({"go.mod": self.mod})

    def info_json(self) -> bytes:
        """The `.info` document: {"Version": ..., "Time": ...}."""
        return json.dumps({"Version": self.version, "Time": self.time}).encode()


# Variables that would make the go command depend on the developer's machine or network.
_GO_ENV_STRIP = {
    "GOFLAGS",
    "GOPROXY",
    "GONOPROXY",
    "GOSUMDB",
    "GONOSUMDB",
    "GONOSUMCHECK",
    "GOPRIVATE",
    "GOINSECURE",
    "GOWORK",
    "GOTOOLCHAIN",
    "GOENV",
    "GOVCS",
    "GOAUTH",
}


def go_env(**overrides: str) -> dict[str, str]:
    """An environment for running the go command hermetically (no network, no workspace)."""
    env = {k: v for k, v in os.environ.items() if k not in _GO_ENV_STRIP}
    env.update(
        GOFLAGS="-mod=mod",
        GOTOOLCHAIN="local",
        GOPROXY="off",
        GOWORK="off",
        GOENV="off",
    )
    env.update(overrides)
    return env


def go_mod_download(
    module: str, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """`go mod download -json MODULE@VERSION` as a developer runs it; never raises (tests
    look at how it failed: its JSON ``Error`` is on stdout)."""
    return subprocess.run(
        ["go", "mod", "download", "-json", module],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _run_go(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(
        ["go", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"go {' '.join(args)} failed in {cwd} (exit {proc.returncode}):\n"
            f"{proc.stdout}{proc.stderr}"
        )
    return proc.stdout + proc.stderr


def _lang_at_least_1_24(go_version: str) -> bool:
    parts = [int(p) for p in re.findall(r"\d+", go_version)[:2]]
    return tuple(parts + [0] * (2 - len(parts))) >= (1, 24)


def _is_vendored(name: str, go_version: str) -> bool:
    """x/mod/zip isVendoredPackage (version-dependent, like the go command)."""
    new_rules = _lang_at_least_1_24(go_version)
    if new_rules and name == "vendor/modules.txt":
        return True
    if name.startswith("vendor/"):
        i = len("vendor/")
    elif (j := name.find("/vendor/")) >= 0:
        i = j + len("/vendor/") if new_rules else len("/vendor/")
    else:
        return False
    return "/" in name[i:]


def _zip_file_list(src: Path, go_version: str) -> list[str]:
    """Files x/mod/zip CreateFromDir would include, as slash paths relative to src."""
    picked: list[str] = []
    for dirpath, dirnames, filenames in os.walk(src):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            sub = here / d
            if d in _VCS_DIRS or (sub / "go.mod").is_file() or sub.is_symlink():
                continue  # VCS metadata, nested module, or symlink
            keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            full = here / f
            rel = full.relative_to(src).as_posix()
            if full.is_symlink() or not full.is_file() or _is_vendored(rel, go_version):
                continue
            picked.append(rel)
    lowered = [p.lower() for p in picked]
    if len(set(lowered)) != len(lowered):
        raise ValueError(f"case-insensitive file name collision in {picked}")
    return sorted(picked, key=lambda n: n.encode())


def make_zip(src: Path, module_path: str, version: str, go_version: str) -> bytes:
    """Zip `src` as `<module>@<version>/...` (module path unescaped), deterministically."""
    prefix = f"{module_path}@{version}/"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for rel in _zip_file_list(src, go_version):
            info = zipfile.ZipInfo(prefix + rel, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, (src / rel).read_bytes())
    return buf.getvalue()


def build_module(
    workdir: Path,
    module_path: str,
    version: str,
    files: dict[str, str],
    go_version: str = "1.22",
    time: str = DEFAULT_TIME,
) -> ModuleVersion:
    """Create a real Go module with `go mod init`, prove it compiles, and zip it.

    `files` maps slash paths relative to the module root to their text. A "go.mod" entry
    replaces the generated one (it must still declare `module_path`).
    """
    if not _SEMVER.match(version):
        raise ValueError(f"not a canonical semantic version: {version!r}")
    src = workdir / f"{escape(module_path).replace('/', '_')}@{escape(version)}"
    src.mkdir(parents=True, exist_ok=False)
    env = go_env()
    _run_go(["mod", "init", module_path], src, env)
    _run_go(["mod", "edit", f"-go={go_version}"], src, env)
    for rel, text in files.items():
        target = src / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    _run_go(["vet", "./..."], src, env)
    mod = (src / "go.mod").read_bytes()
    declared = re.search(rb"^go\s+(\S+)", mod, re.MULTILINE)
    lang = declared[1].decode() if declared else "0"  # no go line: pre-1.24 zip rules
    return ModuleVersion(
        path=module_path,
        version=version,
        time=time,
        mod=mod,
        zip=make_zip(src, module_path, version, lang),
    )


def _semver_key(version: str) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
    m = _SEMVER.match(version)
    if not m:
        raise ValueError(f"not a semantic version: {version!r}")
    major, minor, patch, pre = int(m[1]), int(m[2]), int(m[3]), m[4]
    if pre is None:
        return (major, minor, patch, 1, ())
    ids = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))
    return (major, minor, patch, 0, ids)


def latest(versions: list[str]) -> str:
    """Highest release version, or the highest pre-release if there is no release."""
    releases = [v for v in versions if _semver_key(v)[3] == 1]
    return max(releases or versions, key=_semver_key)


def write_proxy_tree(
    root: Path,
    versions: list[ModuleVersion],
    revision_aliases: dict[tuple[str, str], str] | None = None,
) -> None:
    """Write module versions under `root` in the GOPROXY protocol layout.

    `revision_aliases` maps (module path, query such as "master") to a canonical version;
    `<module>/@v/<query>.info` then answers with that version's info, like an upstream
    proxy resolving a revision query.
    """
    by_module: dict[str, dict[str, ModuleVersion]] = {}
    for mv in versions:
        by_module.setdefault(mv.path, {})[mv.version] = mv
    for module, mvs in by_module.items():
        vdir = root / escape(module) / "@v"
        vdir.mkdir(parents=True, exist_ok=True)
        ordered = sorted(mvs, key=_semver_key)
        (vdir / "list").write_text("".join(v + "\n" for v in ordered))
        for v, mv in mvs.items():
            base = vdir / escape(v)
            base.with_name(base.name + ".info").write_bytes(mv.info_json())
            base.with_name(base.name + ".mod").write_bytes(mv.mod)
            base.with_name(base.name + ".zip").write_bytes(mv.zip)
        (root / escape(module) / "@latest").write_bytes(mvs[latest(ordered)].info_json())
    for (module, query), canonical in (revision_aliases or {}).items():
        mv = by_module[module][canonical]
        (root / escape(module) / "@v" / f"{escape(query)}.info").write_bytes(mv.info_json())
