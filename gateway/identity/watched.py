"""WatchedFile: a small file an operator edits on a running gateway (a deny list of
certificate serials, the groups of certificate subjects), reread when it changes.

Its size and modification time are looked at once every ``RECHECK_S`` (one stat call);
when they change the file is parsed again. Write a new file and rename it over the old
one, so a half-written file is never read. A file that cannot be read or parsed fails
closed: ``current`` raises IdentityUnavailableError (503) with the reason until a good
one is in place, since the identities it decides about cannot be decided meanwhile. At
start-up the same problem is a ValueError, so ``modgate serve`` refuses to start.
"""

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Generic, TypeVar

from ..errors import IdentityUnavailableError

log = logging.getLogger(__name__)

RECHECK_S = 1.0

T = TypeVar("T")


class WatchedFile(Generic[T]):
    def __init__(self, path: str, parse: Callable[[bytes], T], what: str) -> None:
        self._path = Path(path)
        self._parse = parse
        self._what = what
        self._checked_at = time.monotonic()
        self._stamp = self._stat()
        self._value, self._problem = self._load()
        if self._problem is not None:
            raise ValueError(self._problem)

    def _stat(self) -> tuple[int, int]:
        try:
            status = os.stat(self._path)
        except OSError:
            return (-1, -1)
        return (status.st_mtime_ns, status.st_size)

    def _load(self) -> tuple[T | None, str | None]:
        try:
            return self._parse(self._path.read_bytes()), None
        except OSError as exc:
            return None, f"cannot read {self._path}: {exc.strerror}"
        except ValueError as exc:
            return None, f"{self._path}: {exc}"

    def current(self) -> T:
        moment = time.monotonic()
        if moment - self._checked_at >= RECHECK_S:
            self._checked_at = moment
            stamp = self._stat()
            if stamp != self._stamp:
                self._stamp = stamp
                self._value, self._problem = self._load()
                if self._problem is None:
                    log.info("%s reloaded from %s", self._what, self._path)
                else:
                    log.error("%s unusable, its identities refused: %s", self._what, self._problem)
        if self._value is None or self._problem is not None:
            raise IdentityUnavailableError(f"{self._what} unusable: {self._problem}")
        return self._value


def parse_serials(data: bytes) -> frozenset[int]:
    """Hex serial numbers, one per line (``3f:a2:...`` or ``3FA2...``); ``#`` comments."""
    serials = set()
    for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
        text = line.partition("#")[0].strip().replace(":", "")
        if not text:
            continue
        try:
            serials.add(int(text, 16))
        except ValueError as exc:
            raise ValueError(f"line {number}: {text[:40]!r} is not a hex serial number") from exc
    return frozenset(serials)


def parse_groups(data: bytes) -> Mapping[str, tuple[str, ...]]:
    """``{"subject": ["group", ...], ...}``: the groups of each certificate subject."""
    document = json.loads(data)
    if not isinstance(document, dict):
        raise ValueError('expected a JSON object {"subject": ["group", ...]}')
    groups: dict[str, tuple[str, ...]] = {}
    for subject, names in document.items():
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"the groups of {subject!r} are not a list of names")
        groups[subject] = tuple(dict.fromkeys(names))
    return groups
