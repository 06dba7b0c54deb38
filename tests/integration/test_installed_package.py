"""A non-editable install (`pip install .`, as the Dockerfile does) is complete: it carries
every module of gateway/, its migrations and the bundled policies, and works from a
directory that is not the source tree. The wheel is built, like the Dockerfile's, from
only the files the Dockerfile copies into its build stage."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.support.opa import find_opa

pytestmark = pytest.mark.opa

REPO = Path(__file__).resolve().parents[2]


def run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(arg) for arg in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout


def dockerfile_build_context(target: Path) -> Path:
    """Copy what the Dockerfile's first stage COPYs (``COPY SRC... DEST``) to ``target``."""
    lines = (REPO / "Dockerfile").read_text(encoding="utf-8").splitlines()
    stages = [i for i, line in enumerate(lines) if line.startswith("FROM ")]
    copies = [line.split()[1:] for line in lines[stages[0] : stages[1]] if line.startswith("COPY ")]
    assert copies, "no COPY in the Dockerfile's build stage"
    target.mkdir()
    for *sources, _destination in copies:
        for source in sources:
            if (REPO / source).is_dir():
                shutil.copytree(
                    REPO / source, target / source, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                shutil.copy2(REPO / source, target / source)
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway venv with modgate's wheel installed (not editable); returns its bin/."""
    work = tmp_path_factory.mktemp("wheel")
    context = dockerfile_build_context(work / "src")
    # Built offline with the dev venv's setuptools.
    run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
        "--wheel-dir", work / "dist", context, cwd=work,
    )  # fmt: skip
    (wheel,) = (work / "dist").glob("modgate-*.whl")
    target = work / "venv"
    venv.create(target, with_pip=False)
    bin_dir = target / "bin"
    site = Path(
        run(bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
            cwd=work).strip()
    )  # fmt: skip
    run(
        sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--target", site,
        wheel, cwd=work,
    )  # fmt: skip
    # The dependencies come from the dev venv (they are not under test here); a path in
    # a .pth file is put on sys.path, but the .pth files in it (the editable install of
    # this tree) are not read, so `gateway` can only come from the wheel.
    (site / "zz_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    (bin_dir / "modgate").write_text(
        f"#!{bin_dir / 'python'}\nfrom gateway.cli import main\nraise SystemExit(main())\n"
    )
    (bin_dir / "modgate").chmod(0o755)
    return bin_dir


def clean_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODGATE_", "PYTHON"))}
    return {**env, **settings}


def test_the_installed_package_holds_every_module_of_the_source_tree(installed: Path) -> None:
    where = run(
        installed / "python", "-c", "import gateway; print(gateway.__file__)",
        cwd=installed, env=clean_env(),
    )  # fmt: skip
    package = Path(where.strip()).parent
    assert installed.parent in package.parents, f"gateway imported from {package}"
    source = {p.relative_to(REPO / "gateway") for p in (REPO / "gateway").rglob("*.py")}
    shipped = {p.relative_to(package) for p in package.rglob("*.py")}
    assert source <= shipped, f"missing from the wheel: {sorted(map(str, source - shipped))}"


def test_the_installed_modgate_migrates_a_database_from_anywhere(
    installed: Path, tmp_path: Path
) -> None:
    database = tmp_path / "audit.db"
    env = clean_env(MODGATE_AUDIT_DATABASE_URL=f"sqlite+aiosqlite:///{database}")
    run(installed / "modgate", "audit", "migrate", cwd=tmp_path, env=env)
    with sqlite3.connect(database) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"alembic_version", "audit_records", "api_tokens"} <= tables


def test_the_installed_modgate_checks_its_bundled_policies_from_anywhere(
    installed: Path, tmp_path: Path
) -> None:
    env = clean_env(MODGATE_POLICY_OPA_BINARY=str(find_opa()))
    out = run(installed / "modgate", "policy", "check", cwd=tmp_path, env=env)
    # the policies it found are the copy inside the installed package, not the tree's
    assert f"{installed.parent}/" in out and "gateway/_bundled/policies" in out, out
    assert "compiled, data well-formed" in out
