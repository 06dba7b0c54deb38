"""A throwaway PostgreSQL server for tests (real `postgres`, trust auth, 127.0.0.1 only).

initdb refuses to run as root, so when the tests run as root the server runs as the
`postgres` OS user via runuser, with its base directory directly under /tmp (a data
directory inside a 0700 root-owned directory such as pytest's tmp_path fails with
"Permission denied"). `stop()` / `start()` simulate the database going down and back.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from tests.support.ports import free_port

USER = "modgate"
_MISSING = (
    "PostgreSQL server binaries not found: run `make test` (it installs Debian's postgresql) "
    "or install postgresql (initdb, pg_ctl, createdb) yourself"
)


def find_bindir() -> Path:
    """Directory holding initdb/pg_ctl: `pg_config --bindir`, else newest /usr/lib/postgresql."""
    candidates: list[Path] = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))

    def major(p: str) -> float:
        try:
            return float(Path(p).parent.name)
        except ValueError:
            return -1.0

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=major)[::-1]]
    for cand in candidates:
        if (cand / "initdb").is_file() and (cand / "pg_ctl").is_file():
            return cand
    raise RuntimeError(_MISSING)


class ThrowawayPostgres:
    """Start a private PostgreSQL on a free port; removed again on exit."""

    def __init__(self, port: int | None = None) -> None:
        self.bindir = find_bindir()
        self.port = port or free_port()
        self.base: Path | None = None
        self._as_postgres = os.geteuid() == 0
        self._created_db = False
        self.running = False

    # -- URLs ------------------------------------------------------------------------
    def dsn(self, database: str = "modgate") -> str:
        """SQLAlchemy URL for the asyncpg driver."""
        return f"postgresql+asyncpg://{USER}@127.0.0.1:{self.port}/{database}"

    def libpq_dsn(self, database: str = "modgate") -> str:
        """Plain libpq/asyncpg URL."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    # -- lifecycle -------------------------------------------------------------------
    def _run(self, *args: str, as_server_user: bool = True) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if as_server_user and self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(
            cmd,
            cwd=self.base,
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            log = ""
            if self.base is not None and (self.base / "log").exists():
                log = (self.base / "log").read_text(errors="replace")[-3000:]
            raise RuntimeError(
                f"{' '.join(cmd)} failed (exit {proc.returncode}):\n"
                f"{proc.stdout}{proc.stderr}\n--- server log ---\n{log}"
            )

    def _init(self) -> Path:
        base = Path(tempfile.mkdtemp(prefix="modgate-pg-", dir="/tmp"))
        self.base = base
        os.chmod(base, 0o755)
        if self._as_postgres:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "running as root but there is no `postgres` OS user to run initdb as; "
                    "run `make test` (it installs Debian's postgresql)"
                ) from None
            os.chown(base, pw.pw_uid, pw.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(base / "data"),
            "-A",
            "trust",
            "-U",
            USER,
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        return base

    def start(self) -> ThrowawayPostgres:
        """Start the server (initialising it the first time) and create the database."""
        if self.running:
            return self
        base = self.base or self._init()
        opts = f"-p {self.port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(base / "data"),
            "-o",
            opts,
            "-l",
            str(base / "log"),
            "-w",
            "-t",
            "30",
            "start",
        )
        self.running = True
        if not self._created_db:
            self._run(
                "createdb",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                USER,
                USER,
                as_server_user=False,
            )
            self._created_db = True
        return self

    def stop(self) -> None:
        """Stop the server but keep its data: the database is "down" until start()."""
        if self.running and self.base is not None:
            self._run("pg_ctl", "-D", str(self.base / "data"), "-m", "fast", "-w", "stop")
            self.running = False

    def close(self) -> None:
        """Stop the server and delete everything."""
        try:
            self.stop()
        finally:
            if self.base is not None:
                shutil.rmtree(self.base, ignore_errors=True)
                self.base = None
                self._created_db = False

    def __enter__(self) -> ThrowawayPostgres:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
