"""``modgate``: one entry point for serving and for the operator's chores.

    modgate serve [--config FILE]
    modgate token create --subject alice --group developers [--group ...]
    modgate token list | modgate token revoke TOKEN_ID
    modgate certs init DIR [--host H] [--client NAME=GROUP,...] [--client-days N]
    modgate client setup --url https://HOST:PORT --token-file FILE [--dry-run]
    modgate policy test | modgate policy check | modgate policy bundle -o FILE
    modgate audit migrate

Every command reads the same settings (TOML file and MODGATE_* overrides). Errors are one
line on stderr and exit status 2 (bad settings or input) or 1 (a check failed).
"""

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from . import client_setup
from .audit import migrate
from .audit.database import open_engine
from .audit.tokens import SqlTokenStore
from .certs import CLIENT_VALIDITY, DEFAULT_HOSTS, DEV_CLIENT, ClientSpec, init_dev_pki
from .errors import ConfigError
from .identity.tokens import new_token
from .logs import configure as configure_logging
from .policy.bundle import read_bundle
from .policy.layout import CONFIG_DIR, stray_data_files
from .policy.opa import remote_endpoint
from .policy.supervisor import find_opa
from .resources import policies_dir
from .settings import Settings, for_serving, load_settings

REPO_DIR = Path(__file__).resolve().parents[1]
GOLDEN_DIR = REPO_DIR / "tests" / "golden"
"""The golden policy inputs and their Rego tests: in a source checkout, never installed."""


def _settings(args: argparse.Namespace) -> Settings:
    config = getattr(args, "config", None)
    return load_settings(Path(config) if config else None)


def _with_tokens(
    settings: Settings, work: Callable[[SqlTokenStore], Coroutine[Any, Any, int]]
) -> int:
    if settings.audit.migrate_on_start:
        migrate.upgrade(settings.audit.database_url)

    async def run() -> int:
        engine = open_engine(settings.audit.database_url)
        try:
            return await work(SqlTokenStore(engine))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _stray_data_message(policies: str, stray: list[Path]) -> str:
    return (
        f"data file outside {CONFIG_DIR}/ in {policies}, read by no rule: "
        f"{', '.join(map(str, stray))}; policy data belongs in {CONFIG_DIR}/data.json"
    )


def _run_opa(binary: str, *args: str, failure: str) -> str:
    """OPA's stdout for ``args``; ConfigError ``failure: <its first lines>`` when it fails."""
    done = subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        first = (done.stderr or done.stdout).strip().splitlines()[:3]
        raise ConfigError(f"{failure}: {' | '.join(first)}")
    return done.stdout


def _data_errors(binary: str, policies: str, document: str = "data_errors") -> list[str]:
    """Every problem the policy finds in its data (``data.modgate.data_errors``), or what
    it warns of (``data_warnings``: nothing denied, nothing refused)."""
    query = ["eval", "--format", "json", "--ignore", "*_test.rego", "-d", policies]
    out = _run_opa(binary, *query, f"data.modgate.{document}", failure=f"policies in {policies}")
    results = json.loads(out).get("result", [])
    if not results:
        return [] if document == "data_warnings" else [f"{document} is undefined"]
    return [str(error) for error in results[0]["expressions"][0]["value"]]


def _check_bundled_policies(settings: Settings) -> None:
    """The OPA binary exists, no data file sits where no rule reads it, the policies
    compile and their data is well-formed: else one clear line, not a traceback. (Once
    running, a bad edit is refused by the policy itself: every request is denied.)"""
    binary = str(find_opa(settings.policy.opa_binary))
    policies = str(policies_dir(settings.policy.policies_dir))
    if not Path(policies).is_dir():
        raise ConfigError(
            f"config key policy.policies_dir: no such directory {policies!r} "
            f"(relative to {Path.cwd()})"
        )
    stray = stray_data_files(Path(policies))
    if stray:
        raise ConfigError(f"policies in {policies}: {_stray_data_message(policies, stray)}")
    _run_opa(
        binary, "check", "--ignore", "*_test.rego", policies,
        failure=f"policies in {policies} do not compile",
    )  # fmt: skip
    errors = _data_errors(binary, policies)
    if errors:
        more = f" (and {len(errors) - 1} more: modgate policy check)" if len(errors) > 1 else ""
        raise ConfigError(f"policies in {policies}: {errors[0]}{more}")


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import serve  # uvicorn is only needed here

    settings = for_serving(_settings(args))
    configure_logging(settings.log.format, settings.log.level)
    if not settings.policy.opa_url:  # check what the supervised OPA needs before binding
        _check_bundled_policies(settings)
    else:  # the token file is readable and not empty: one line and exit 2, not a traceback
        remote_endpoint(settings.policy)
    if settings.audit.migrate_on_start:
        migrate.upgrade(settings.audit.database_url)
    serve(settings)
    return 0


_DURATION_UNITS = {"m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> dt.timedelta:
    """``90d``, ``12h``, ``30m``: a positive whole number and one unit."""
    number, unit = text[:-1], text[-1:]
    if unit not in _DURATION_UNITS or not number.isdigit() or int(number) <= 0:
        raise ValueError(f"--expires {text!r}: expected a positive duration such as 90d, 12h, 30m")
    return dt.timedelta(seconds=int(number) * _DURATION_UNITS[unit])


def cmd_token_create(args: argparse.Namespace) -> int:
    try:
        expires_at = None
        if args.expires is not None:
            expires_at = dt.datetime.now(dt.UTC) + parse_duration(args.expires)
        token = new_token(args.subject, tuple(args.group), expires_at)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc

    async def work(store: SqlTokenStore) -> int:
        await store.add(token.stored)
        return 0

    status = _with_tokens(_settings(args), work)
    print(token.secret_token)
    print(
        f"token {token.stored.token_id} for {token.stored.subject} "
        f"(groups: {', '.join(token.stored.groups) or 'none'}"
        + (f", expires {expires_at:%Y-%m-%dT%H:%M:%SZ}" if expires_at else "")
        + "); shown once, store it now",
        file=sys.stderr,
    )
    return status


def cmd_token_list(args: argparse.Namespace) -> int:
    async def work(store: SqlTokenStore) -> int:
        for stored, created in await store.all():
            expired = stored.expires_at is not None and stored.expires_at <= dt.datetime.now(dt.UTC)
            state = "revoked" if stored.revoked else "expired" if expired else "active"
            groups = ",".join(stored.groups) or "-"
            expires = stored.expires_at.isoformat() if stored.expires_at else "never"
            print(
                f"{stored.token_id}\t{stored.subject}\t{groups}\t{state}\t"
                f"{created.isoformat()}\texpires {expires}"
            )
        return 0

    return _with_tokens(_settings(args), work)


def cmd_token_revoke(args: argparse.Namespace) -> int:
    async def work(store: SqlTokenStore) -> int:
        if await store.revoke(args.token_id):
            print(f"revoked {args.token_id}")
            return 0
        print(f"modgate: no token {args.token_id!r}", file=sys.stderr)
        return 1

    return _with_tokens(_settings(args), work)


def cmd_certs_init(args: argparse.Namespace) -> int:
    try:
        clients = tuple(ClientSpec.parse(text) for text in args.client)
        if args.client_days <= 0:
            raise ValueError(f"--client-days {args.client_days}: must be positive")
        pki = init_dev_pki(
            Path(args.directory),
            tuple(args.host) or DEFAULT_HOSTS,
            clients,
            dt.timedelta(days=args.client_days),
        )
    except ValueError as exc:
        print(f"modgate certs init: {exc}", file=sys.stderr)
        return 2
    print(f"CA {pki.ca_cert}\nserver {pki.server_cert} {pki.server_key}")
    print(f"client {DEV_CLIENT} {pki.client_cert} {pki.client_key}")
    for files in pki.clients:
        groups = ",".join(files.spec.groups) or "-"
        print(f"client {files.spec.subject} groups={groups} {files.cert} {files.key}")
    return 0


def cmd_client_setup(args: argparse.Namespace) -> int:
    try:
        if args.token_file == "-":
            token = sys.stdin.readline().strip()
        else:
            token = Path(args.token_file).read_text(encoding="utf-8").strip()
        if not token:
            raise client_setup.SetupError("the token file is empty")
        settings = client_setup.fetch_settings(args.url, token, args.ca_file)
        netrc = Path(args.netrc) if args.netrc else client_setup.netrc_path(os.environ)
        setup = client_setup.plan(settings, token, args.login, client_setup.current_go_env(), netrc)
        verb = "would set" if args.dry_run else "setting"
        for change in setup.changes:
            print(f"{verb}: {change.describe()}")
        if not setup.changes:
            print("go env: already set for this gateway")
        print(f"{verb}: {setup.netrc} (mode 0600): {setup.netrc_line}")
        if args.ca_file:
            print(f"also: export SSL_CERT_FILE={args.ca_file} (the go command's CA roots)")
        if not args.dry_run:
            client_setup.apply(setup)
    except (client_setup.SetupError, OSError) as exc:
        print(f"modgate client setup: {exc}", file=sys.stderr)
        return 1
    return 0


def _opa(args: argparse.Namespace, *opa_args: str) -> int:
    settings = _settings(args)
    binary = find_opa(settings.policy.opa_binary)
    return subprocess.run([str(binary), *opa_args], check=False).returncode


def cmd_policy_test(args: argparse.Namespace) -> int:
    """``opa test`` on the policies; on the bundled ones in a source checkout, with the
    golden policy inputs too (tests/golden: the exact text the gateway sends, and the Rego
    tests that run the bundled policy on it)."""
    policies = str(policies_dir(_settings(args).policy.policies_dir))
    bundled = Path(policies).resolve() == REPO_DIR / "policies"
    extra = [str(GOLDEN_DIR)] if bundled and GOLDEN_DIR.is_dir() else []
    # opa test gives each test 5 s by default: too tight for the data tests on a busy machine
    return _opa(args, "test", "-v", "--timeout", "60s", policies, *extra)


def cmd_policy_check(args: argparse.Namespace) -> int:
    """Compile the policies strictly, list every problem in the policy data, print the revision.

    Once loaded, malformed data denies the requests it could otherwise wrongly allow
    (docs/policy.md has which); this finds every problem before a roll-out, including
    those that deny nothing (``data.modgate.data_errors``) and data files outside
    ``modgate/config/``, which OPA loads but no rule reads.
    """
    settings = _settings(args)
    binary = str(find_opa(settings.policy.opa_binary))
    policies = str(policies_dir(settings.policy.policies_dir))
    status = subprocess.run(
        [binary, "check", "--strict", "--ignore", "*_test.rego", policies], check=False
    ).returncode
    if status != 0:
        return status
    try:
        errors = _data_errors(binary, policies)
        warnings = _data_errors(binary, policies, "data_warnings")
    except ConfigError as exc:
        print(exc.reason, file=sys.stderr)
        return 1
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    stray = stray_data_files(Path(policies))
    errors += [_stray_data_message(policies, [path]) for path in stray]
    for error in errors:
        print(error, file=sys.stderr)
    if errors:
        return 1
    try:
        revision = read_bundle(Path(policies)).revision
    except ConfigError as exc:
        print(exc.reason, file=sys.stderr)
        return 1
    print(f"policies in {policies}: compiled, data well-formed, revision {revision}")
    return 0


def cmd_policy_bundle(args: argparse.Namespace) -> int:
    """Write the policies as an OPA bundle named by their content hash, for OPA servers
    that poll a bundle server beside the replicas; checked first like ``policy check``."""
    status = cmd_policy_check(args)
    if status != 0:
        return status
    settings = _settings(args)
    try:
        bundle = read_bundle(policies_dir(settings.policy.policies_dir))
        tarball = bundle.tarball()
    except ConfigError as exc:
        print(exc.reason, file=sys.stderr)
        return 1
    target = Path(args.output)
    partial = target.with_name(f".{target.name}.partial")
    try:  # written aside and renamed: a bundle server never serves half a bundle
        partial.write_bytes(tarball)
        partial.replace(target)
    except OSError as exc:
        print(f"cannot write the bundle {target}: {exc}", file=sys.stderr)
        return 1
    print(f"bundle {target}: revision {bundle.revision}")
    return 0


def cmd_audit_migrate(args: argparse.Namespace) -> int:
    migrate.upgrade(_settings(args).audit.database_url)
    return 0


def parser() -> argparse.ArgumentParser:
    # --config is accepted before or after the command (`modgate serve --config FILE`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help="TOML settings file (MODGATE_* variables override it)",
    )
    top = argparse.ArgumentParser(
        prog="modgate", description=__doc__.splitlines()[0], parents=[common]
    )
    sub = top.add_subparsers(dest="command", required=True)

    sub.add_parser("serve", help="run the gateway", parents=[common]).set_defaults(run=cmd_serve)

    token = sub.add_parser("token", help="API tokens").add_subparsers(dest="action", required=True)
    create = token.add_parser("create", help="make a token; prints it once", parents=[common])
    create.add_argument("--subject", required=True)
    create.add_argument("--group", action="append", default=[])
    create.add_argument(
        "--expires",
        metavar="DURATION",
        help="refuse the token after 90d, 12h, 30m (default: never)",
    )
    create.set_defaults(run=cmd_token_create)
    token.add_parser(
        "list", help="list tokens (never their secrets)", parents=[common]
    ).set_defaults(run=cmd_token_list)
    revoke = token.add_parser("revoke", help="revoke a token by id", parents=[common])
    revoke.add_argument("token_id")
    revoke.set_defaults(run=cmd_token_revoke)

    certs = sub.add_parser("certs", help="development PKI").add_subparsers(
        dest="action", required=True
    )
    init = certs.add_parser("init", help="write a dev CA, server and client certificates")
    init.add_argument("directory")
    init.add_argument("--host", action="append", default=[], help="server name or IP (repeat)")
    init.add_argument(
        "--client",
        action="append",
        default=[],
        metavar="NAME[=GROUP,...]",
        help="a client certificate for NAME (a SPIFFE ID goes into a URI SAN), its groups "
        "as OUs (repeat)",
    )
    init.add_argument(
        "--client-days", type=int, default=CLIENT_VALIDITY.days, help="client validity (days)"
    )
    init.set_defaults(run=cmd_certs_init)

    client = sub.add_parser("client", help="a developer's go command").add_subparsers(
        dest="action", required=True
    )
    setup = client.add_parser(
        "setup", help="set GOPROXY, GOAUTH, GONOSUMDB and a .netrc line for a gateway"
    )
    setup.add_argument("--url", required=True, help="the gateway, https://host:port")
    setup.add_argument(
        "--token-file", required=True, metavar="FILE", help="file holding the token (- : stdin)"
    )
    setup.add_argument("--login", help="netrc login (default: the subject the token names)")
    setup.add_argument("--netrc", metavar="FILE", help="netrc file (default: $NETRC, ~/.netrc)")
    setup.add_argument("--ca-file", metavar="FILE", help="CA bundle of the gateway's certificate")
    setup.add_argument("--dry-run", action="store_true", help="print the changes, make none")
    setup.set_defaults(run=cmd_client_setup)

    policy = sub.add_parser("policy", help="policies").add_subparsers(dest="action", required=True)
    policy.add_parser("test", help="run `opa test` on the policies", parents=[common]).set_defaults(
        run=cmd_policy_test
    )
    policy.add_parser("check", help="compile the policies strictly", parents=[common]).set_defaults(
        run=cmd_policy_check
    )
    bundle = policy.add_parser(
        "bundle", help="check the policies, write them as an OPA bundle", parents=[common]
    )
    bundle.add_argument("-o", "--output", required=True, metavar="FILE", help="bundle.tar.gz")
    bundle.set_defaults(run=cmd_policy_bundle)

    audit = sub.add_parser("audit", help="the audit trail").add_subparsers(
        dest="action", required=True
    )
    audit.add_parser(
        "migrate", help="bring the audit database schema up to date", parents=[common]
    ).set_defaults(run=cmd_audit_migrate)
    return top


def main(argv: list[str] | None = None) -> int:
    # Until `serve` reads log.*, only warnings and errors: a chore such as `token create`
    # prints what it was asked for and nothing from the libraries it uses.
    configure_logging("text", "warning")
    args = parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except ConfigError as exc:
        print(f"modgate: {exc.reason}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    sys.exit(main())
