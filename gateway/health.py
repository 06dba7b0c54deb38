"""Check: one readiness probe a stage offers about itself, for /readyz (``operations.py``).

Each stage knows what "working" means for it (the audit store answers a query, OPA answers
and its data is well-formed, an upstream answers at all) and hands out its own checks; the
operator endpoints only run them, so no SQL or OPA path lives outside its stage.
"""

from collections.abc import Awaitable, Callable
from typing import NamedTuple


class Check(NamedTuple):
    problem: str
    """What /readyz reports to operators when the probe fails."""
    probe: Callable[[], Awaitable[bool]]
    """True when all is well; False (or an exception) is the problem."""
