"""Zips are streamed, never held whole: the gateway's peak memory stays flat while a zip
several times larger than that margin passes through it byte for byte."""

from __future__ import annotations

import hashlib
import os
import ssl
from pathlib import Path

import httpx
import pytest

from gateway.certs import DevPki
from tests.conftest import Tokens, gateway_env
from tests.support.gateway import GatewayProcess
from tests.support.gomodules import build_module, write_proxy_tree
from tests.support.opa import OpaServer
from tests.support.postgres import ThrowawayPostgres
from tests.support.upstream import UpstreamServer

pytestmark = [pytest.mark.postgres, pytest.mark.opa, pytest.mark.gocmd]

MIB = 1024 * 1024


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def test_large_zip_streams_through_with_flat_memory(
    tmp_path: Path,
    pki: DevPki,
    postgres: ThrowawayPostgres,
    opa_server: OpaServer,
    tokens: Tokens,
    tls_context: ssl.SSLContext,
) -> None:
    # A real module whose zip is ~64 MiB: random hex text compresses to about half.
    blob = os.urandom(64 * MIB).hex()
    big = build_module(
        tmp_path / "src",
        "example.com/big",
        "v1.0.0",
        {"lib.go": "package big\n", "testdata/blob.txt": blob},
    )
    del blob
    assert len(big.zip) > 60 * MIB
    write_proxy_tree(tmp_path / "tree", [big])
    with UpstreamServer(tmp_path / "tree") as upstream:
        env = gateway_env(pki, postgres, opa_server.url, upstream.url, "")
        with GatewayProcess(env, pki.ca_cert, tmp_path / "modgate.log") as gateway:
            headers = {"Authorization": f"Bearer {tokens.alice}"}
            with httpx.Client(base_url=gateway.url, verify=tls_context, timeout=60) as client:
                # warm up every code path once, then measure the peak from here on
                client.get("/example.com/big/@v/v1.0.0.info", headers=headers)
                before = peak_rss_bytes(gateway.pid)
                digest, size = hashlib.sha256(), 0
                with client.stream("GET", "/example.com/big/@v/v1.0.0.zip", headers=headers) as r:
                    assert r.status_code == 200
                    assert r.headers["Content-Length"] == str(len(big.zip))
                    for chunk in r.iter_bytes():
                        digest.update(chunk)
                        size += len(chunk)
                growth = peak_rss_bytes(gateway.pid) - before
    assert size == len(big.zip)
    assert digest.hexdigest() == hashlib.sha256(big.zip).hexdigest()
    assert growth < 16 * MIB, f"peak memory grew by {growth / MIB:.1f} MiB for a 64 MiB zip"
