"""`modgate client setup`: configure a developer's go command for a modgate gateway.

It asks the gateway who the token names and which module paths are private
(GET /-/client-settings), then sets, with `go env -w` (the go command's own settings
file, `go env GOENV`):

- ``GOPROXY`` to the gateway alone (no ``,direct``: a 404 would fall back around it);
- ``GOAUTH`` to ``netrc``, and a ``machine host:port login ... password ...`` line in the
  netrc file ($NETRC, else ~/.netrc), written with mode 0600;
- ``GONOSUMDB`` to the private patterns (the public checksum database is never asked about
  them); when ``GOPRIVATE`` is set, ``GONOPROXY=none`` so it cannot route around modgate.

Every change is printed, old value beside the new, the secret never; ``--dry-run`` prints
and changes nothing. A netrc entry for the same machine spread over several lines is not
rewritten (the user's own layout): the command stops and says so.
"""

import json
import os
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .client_settings import PATH

GO_KEYS = ("GOPROXY", "GOAUTH", "GONOSUMDB", "GOPRIVATE", "GONOPROXY")


class SetupError(Exception):
    """Why the setup cannot be done; nothing was changed."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    goproxy: str
    subject: str | None
    private_patterns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Change:
    key: str
    old: str
    new: str

    def describe(self) -> str:
        return f"go env -w {self.key}={self.new}   (was: {self.old or 'unset'})"


def fetch_settings(
    url: str, token: str, ca_file: str | None, timeout_s: float = 10
) -> ServerSettings:
    if not url.startswith("https://"):
        raise SetupError(f"{url} is not https: the go command sends credentials over https only")
    context = ssl.create_default_context(cafile=ca_file)
    request = urllib.request.Request(
        url.rstrip("/") + PATH, headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=timeout_s) as response:
            document = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:  # the error holds the response open
            reason = exc.read().decode("utf-8", "replace").strip().splitlines()
        raise SetupError(f"{url} answered {exc.code}: {' '.join(reason)[:300]}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise SetupError(f"cannot read {url}{PATH}: {exc}") from exc
    patterns = document.get("private_patterns") if isinstance(document, dict) else None
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise SetupError(f"{url}{PATH} did not send the client settings")
    subject = document.get("subject")
    return ServerSettings(
        url.rstrip("/"), subject if isinstance(subject, str) else None, tuple(patterns)
    )


def netrc_machine(url: str) -> str:
    """The netrc ``machine`` the go command matches for ``url``: ``host:port``, or the
    bare host on 443 (cmd/go/internal/auth/netrc.go matches the request's URL host)."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise SetupError(f"{url} names no host")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return host if parts.port in (None, 443) else f"{host}:{parts.port}"


def netrc_with(text: str, machine: str, login: str, password: str) -> str:
    """``text`` with the one-line entry for ``machine`` replaced (or added)."""
    kept = []
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "machine" and words[1] == machine:
            if len(words) < 6:
                raise SetupError(
                    f"the netrc entry for {machine} spans several lines: edit it by hand"
                )
            continue
        kept.append(line)
    kept.append(f"machine {machine} login {login} password {password}")
    return "\n".join(kept) + "\n"


def go_env_changes(current: Mapping[str, str], settings: ServerSettings) -> list[Change]:
    wanted = {
        "GOPROXY": settings.goproxy,
        "GOAUTH": "netrc",
        "GONOSUMDB": ",".join(settings.private_patterns),
    }
    if current.get("GOPRIVATE"):
        wanted["GONOPROXY"] = "none"
    return [
        Change(key, current.get(key, ""), value)
        for key, value in wanted.items()
        if current.get(key, "") != value and (value or current.get(key))
    ]


def current_go_env(
    run: Callable[..., "subprocess.CompletedProcess[str]"] = subprocess.run,
) -> dict[str, str]:
    done = run(["go", "env", "-json", *GO_KEYS], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SetupError(f"`go env` failed: {done.stderr.strip()}")
    values = json.loads(done.stdout or "{}")
    return {key: str(values.get(key, "")) for key in GO_KEYS}


def netrc_path(env: Mapping[str, str]) -> Path:
    if env.get("NETRC"):
        return Path(env["NETRC"])
    return Path(env.get("HOME", str(Path.home()))) / ".netrc"


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, mode 0600 from the first byte (it holds a secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".netrc-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:  # mkstemp: mode 0600
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclass(frozen=True, slots=True)
class Plan:
    changes: list[Change]
    netrc: Path
    netrc_text: str
    netrc_line: str
    """The entry as printed: the password hidden."""


def plan(
    settings: ServerSettings, token: str, login: str | None, current: Mapping[str, str],
    netrc: Path,
) -> Plan:  # fmt: skip
    login = login or settings.subject
    if not login:
        raise SetupError("the gateway names no subject for this token: give --login")
    machine = netrc_machine(settings.goproxy)
    old = netrc.read_text(encoding="utf-8") if netrc.exists() else ""
    text = netrc_with(old, machine, login, token)
    shown = f"machine {machine} login {login} password {token[:8]}... (hidden)"
    return Plan(go_env_changes(current, settings), netrc, text, shown)


def apply(
    setup: Plan, run: Callable[..., "subprocess.CompletedProcess[str]"] = subprocess.run
) -> None:
    if setup.changes:
        done = run(
            ["go", "env", "-w", *(f"{c.key}={c.new}" for c in setup.changes)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise SetupError(f"`go env -w` failed: {done.stderr.strip()}")
    write_private(setup.netrc, setup.netrc_text)
