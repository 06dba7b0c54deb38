"""The ``opa run`` command line, built here only, for every OPA that modgate runs or ships.

The supervised OPA (``supervisor.py``), the OPA servers of the tests and the benchmarks
(``tests/support/opa.py``, ``bench/``) and the OPA service of ``compose.yaml`` (a test
compares it) all start with these arguments: what is tested and measured is what runs in
production.
"""

from collections.abc import Sequence

from ..errors import ConfigError

OPA_LOG_LEVELS = ("debug", "info", "error")
# At info OPA writes two JSON lines per decision (request and response) into modgate's
# output, 1.4 MB for 3,500 requests, and spends about 9 % of its CPU on them.
DEFAULT_OPA_LOG_LEVEL = "error"


def opa_run_args(
    address: str,
    paths: Sequence[str],
    *,
    log_level: str = DEFAULT_OPA_LOG_LEVEL,
    decision_logs: bool = False,
    extra: Sequence[str] = (),
) -> list[str]:
    """Arguments of ``opa`` (without the binary itself) serving ``paths`` on ``address``.

    ``address`` is ``host:port`` or ``unix:///path``. ``decision_logs`` turns on OPA's
    console decision logger: one JSON line per decision, with its input and result, on
    OPA's standard output, whatever the log level. ``extra`` holds what differs between
    deployments (authentication, authorization, TLS, socket mode); ``paths`` come last.
    """
    if log_level not in OPA_LOG_LEVELS:
        raise ConfigError(
            f"config key policy.opa_log_level: {log_level!r} is not one of "
            f"{', '.join(OPA_LOG_LEVELS)}"
        )
    return [
        "run",
        "--server",
        "--skip-version-check",
        # Reload edited policies and data without a restart; a bad edit keeps the last
        # good policy serving (OPA logs the error).
        "--watch",
        # Policy data is read on every decision and written only on a reload; this store
        # mode roughly halved the per-blacklist-entry cost of a decision, measured here.
        "--optimize-store-for-read-speed",
        "--addr",
        address,
        "--ignore",
        "*_test.rego",  # the policies' unit tests are for `opa test`, not for serving
        "--log-level",
        log_level,
        *(["--set", "decision_logs.console=true"] if decision_logs else []),
        *extra,
        *paths,
    ]
