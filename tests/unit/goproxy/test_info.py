"""An upstream's .info is read as the go command reads it, or refused when that is ambiguous.

Each row says what modgate reads (a version, or the refusal it gives) and what the go
command's own decoder (encoding/json into modfetch.RevInfo) reads from the same bytes; the
`gocmd` tests run real Go over every row, so the "go reads" column is checked, not assumed.
"""

from __future__ import annotations

import base64
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.errors import UpstreamError
from gateway.goproxy import info
from tests.support.gomodules import go_env

UP = "http://up.example"
DEEP = b'{"Version":"v1.0.0","x":' + b"[" * 20000 + b"]" * 20000 + b"}"


@dataclass(frozen=True)
class Row:
    body: bytes
    ours: str  # the version modgate reads, or "refused: <part of the reason>"
    go: str  # what json.Unmarshal into RevInfo gives: "ok:<Version>" or "error"


ROWS = {
    "plain": Row(b'{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}', "v1.0.0", "ok:v1.0.0"),
    "lower-case-key": Row(b'{"version":"v1.0.1"}', "v1.0.1", "ok:v1.0.1"),
    "upper-case-key": Row(b'{"VERSION":"v1.0.1"}', "v1.0.1", "ok:v1.0.1"),
    "long-s-escaped": Row(b'{"Ver\\u017fion":"v1.0.1"}', "v1.0.1", "ok:v1.0.1"),
    "long-s-utf8": Row('{"Ver\u017fion":"v1.0.1"}'.encode(), "v1.0.1", "ok:v1.0.1"),
    "escaped-ascii-key": Row(b'{"\\u0056ersion":"v1.0.1"}', "v1.0.1", "ok:v1.0.1"),
    "dotless-i-is-no-fold": Row(
        '{"Vers\u0131on":"v1.0.1","Version":"v1.0.0"}'.encode(), "v1.0.0", "ok:v1.0.0"
    ),
    "white-space-around": Row(b'\n {"Version" : "v1.0.0"} \r\n\t', "v1.0.0", "ok:v1.0.0"),
    "name-and-short-are-not-fields": Row(
        b'{"Version":"v1.0.0","Name":"a","name":"b","Short":"c","short":"d"}',
        "v1.0.0",
        "ok:v1.0.0",
    ),
    "nested-version-is-ignored": Row(
        b'{"Version":"v1.0.0","Origin":{"Version":"v1.0.1"}}', "v1.0.0", "ok:v1.0.0"
    ),
    "origin-passed-through": Row(
        b'{"Version":"v1.0.0","Origin":{"VCS":"git","Hash":"abc"}}', "v1.0.0", "ok:v1.0.0"
    ),
    "exact-then-lower-case": Row(
        b'{"Version":"v1.0.0","version":"v1.0.1"}',
        "refused: ambiguous .info: keys Version, version",
        "ok:v1.0.1",
    ),
    "lower-then-exact": Row(
        b'{"version":"v1.0.1","Version":"v1.0.0"}',
        "refused: ambiguous .info: keys version, Version",
        "ok:v1.0.0",
    ),
    "exact-duplicate": Row(
        b'{"Version":"v1.0.1","Version":"v1.0.0"}',
        "refused: ambiguous .info: keys Version, Version",
        "ok:v1.0.0",
    ),
    "long-s-duplicate": Row(
        b'{"Version":"v1.0.0","Ver\\u017fion":"v1.0.1"}',
        "refused: ambiguous .info: keys Version, Ver\u017fion",
        "ok:v1.0.1",
    ),
    "duplicate-with-null": Row(
        b'{"Version":"v1.0.1","version":null}',
        "refused: ambiguous .info: keys Version, version",
        "ok:v1.0.1",
    ),
    "duplicate-time": Row(
        b'{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z","TIME":"2025-01-01T00:00:00Z"}',
        "refused: ambiguous .info: keys Time, TIME",
        "ok:v1.0.0",
    ),
    "duplicate-origin": Row(
        b'{"Version":"v1.0.0","Origin":{},"origin":{"Ref":"refs/heads/x"}}',
        "refused: ambiguous .info: keys Origin, origin",
        "ok:v1.0.0",
    ),
    "nan": Row(b'{"Version":"v1.0.0","x":NaN}', "refused: unreadable", "error"),
    "infinity": Row(b'{"Version":"v1.0.0","x":-Infinity}', "refused: unreadable", "error"),
    "byte-order-mark": Row(b'\xef\xbb\xbf{"Version":"v1.0.0"}', "refused: unreadable", "error"),
    "utf-16": Row('{"Version":"v1.0.0"}'.encode("utf-16-le"), "refused: unreadable", "error"),
    "invalid-utf-8": Row(b'{"Version":"v1.0.0","x":"\xff"}', "refused: unreadable", "ok:v1.0.0"),
    "trailing-data": Row(b'{"Version":"v1.0.0"} x', "refused: unreadable", "error"),
    "two-documents": Row(
        b'{"Version":"v1.0.0"}{"Version":"v1.0.1"}', "refused: unreadable", "error"
    ),
    "control-character": Row(b'{"Version":"v1.0.0\n"}', "refused: unreadable", "error"),
    "deep-nesting": Row(DEEP, "refused: unreadable", "error"),
    "array": Row(b'["v1.0.0"]', "refused: unreadable", "error"),
    "null-document": Row(b"null", "refused: unreadable", "ok:"),
    "empty-object": Row(b"{}", "refused: without a Version", "ok:"),
    "null-version": Row(b'{"Version":null}', "refused: not a string", "ok:"),
    "number-version": Row(b'{"Version":1}', "refused: not a string", "error"),
    "lone-surrogate-in-version": Row(
        b'{"Version":"v1.0.0\\ud800"}', "refused: not ASCII", "ok:v1.0.0\ufffd"
    ),
}


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_info_version_is_read_as_go_reads_it_or_refused(row: Row) -> None:
    # given an upstream's .info body, when modgate reads its version
    if row.ours.startswith("refused: "):
        with pytest.raises(UpstreamError) as refused:
            info.read_version(row.body, UP)
        # then it refuses, naming the upstream and why
        assert refused.value.status == 502
        assert refused.value.reason.startswith(f"upstream {UP} ")
        assert row.ours.removeprefix("refused: ") in refused.value.reason
    else:
        # then it reads what the go command reads
        assert info.read_version(row.body, UP) == row.ours
        assert row.go == f"ok:{row.ours}"


GO_READER = """
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"time"
	"unicode"
)

// Copies of cmd/go/internal/modfetch.RevInfo and codehost.Origin.
type Origin struct {
	VCS       string `json:",omitempty"`
	URL       string `json:",omitempty"`
	Subdir    string `json:",omitempty"`
	Hash      string `json:",omitempty"`
	TagPrefix string `json:",omitempty"`
	TagSum    string `json:",omitempty"`
	Ref       string `json:",omitempty"`
	RepoSum   string `json:",omitempty"`
}

type RevInfo struct {
	Version string
	Time    time.Time
	Name    string  `json:"-"`
	Short   string  `json:"-"`
	Origin  *Origin `json:",omitempty"`
}

func main() {
	if os.Args[1] == "folds" {
		// Every non-ASCII rune whose simple case-fold orbit holds an ASCII letter.
		for r := rune(0x80); r <= unicode.MaxRune; r++ {
			for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
				if f < 0x80 {
					fmt.Printf("%04X %c\\n", r, unicode.ToUpper(f))
				}
			}
		}
		return
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		data, _ := base64.StdEncoding.DecodeString(in.Text())
		info := new(RevInfo)
		if err := json.Unmarshal(data, info); err != nil {
			fmt.Println("error")
		} else {
			fmt.Println("ok:" + base64.StdEncoding.EncodeToString([]byte(info.Version)))
		}
	}
}
"""


@pytest.fixture(scope="module")
def go_reader(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("goreader")
    (work / "main.go").write_text(GO_READER)
    binary = work / "reader"
    subprocess.run(
        ["go", "build", "-o", str(binary), "main.go"],
        cwd=work,
        env=go_env(),
        check=True,
        capture_output=True,
        timeout=120,
    )
    return binary


@pytest.mark.gocmd
def test_go_reads_each_row_as_the_table_says(go_reader: Path) -> None:
    # given every row's bytes, when Go's encoding/json decodes them into RevInfo
    lines = "".join(base64.b64encode(row.body).decode() + "\n" for row in ROWS.values())
    done = subprocess.run(
        [str(go_reader), "read"], input=lines, capture_output=True, text=True, timeout=60
    )
    results = []
    for out in done.stdout.splitlines():
        ok, _, version = out.partition(":")
        results.append(f"ok:{base64.b64decode(version).decode()}" if ok == "ok" else out)
    # then the "go reads" column is what Go reads
    assert dict(zip(ROWS, results, strict=True)) == {k: r.go for k, r in ROWS.items()}


@pytest.mark.gocmd
def test_only_long_s_and_kelvin_fold_to_ascii_letters(go_reader: Path) -> None:
    # given Go's unicode tables, when every non-ASCII rune's fold orbit is walked
    done = subprocess.run(
        [str(go_reader), "folds"], capture_output=True, text=True, timeout=60, check=True
    )
    found = {
        chr(int(code, 16)): letter for code, letter in map(str.split, done.stdout.split("\n")[:-1])
    }
    # then the only ones reaching an ASCII letter are those info.fold_name knows
    assert found == {"\u017f": "S", "\u212a": "K"}
    assert {c: info.fold_name(c) for c in found} == found
