"""Registry data is untrusted: hostile values through every command and format, client
IDs that try to leave `export --out`, and malformed or oversized registry responses.

The server validates what it is sent, so hostile clients are written into its store
directly (SQL), as a compromised or buggy registry would hold them. Every command runs
as a real process against a real `registry serve`; malformed answers come from the
fault proxy's canned responses.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from support.faultproxy import FaultProxy, start_proxy
from support.faultproxy import origin as proxy_origin
from support.registry import CI_CREDENTIAL, RegistryServer

from oauth2_sync.errors import RegistryError
from oauth2_sync.refserver.store import RegistryStore
from oauth2_sync.registry.http import Credentials, HttpRegistry
from oauth2_sync.secret import Secret

CI = CI_CREDENTIAL
NAME = (
    "Evil \x1b[31mRED\x1b[0m\x07 \u202etxt.exe </details><img src=x onerror=alert(1)> "
    "@org/team [x](javascript:alert(1)) <!-- `tick` **bold** \r\nnext line"
)
EMAIL = "@org/team</summary><script>x</script>@evil.example"
ESCAPING_IDS = ("../../etc/passwd", "acme-../../outside", "/tmp/absolute", "acme-x\nx", ".hidden")
CONTROL = ("\x1b", "\x07", "\r", "\u202e")


def hostile_registry(server: RegistryServer) -> None:
    """acme-reporting holds hostile values; acme-web-portal is a hostile undeclared
    client; and clients whose IDs would name files outside any folder."""
    store = RegistryStore(server.db)
    placeholders = [f"acme-placeholder{i}" for i in range(len(ESCAPING_IDS))]
    bodies = [
        {"clientId": cid, "name": "x", "email": "x@acme.example", "partnerId": 101}
        for cid in ("acme-reporting", "acme-web-portal", *placeholders)
    ]
    store.bulk_create(bodies, "seed")
    store.close()
    with sqlite3.connect(server.db) as db:
        db.execute(
            "UPDATE clients SET name=?, email=?, updated_by=? WHERE client_id IN "
            "('acme-reporting', 'acme-web-portal')", (NAME, EMAIL, "@octocat\x1b[2J"),
        )
        for new_id, old_id in zip(ESCAPING_IDS, placeholders, strict=True):
            db.execute("UPDATE clients SET client_id=? WHERE client_id=?", (new_id, old_id))


def write_repo(root: Path, url: str) -> None:
    """One declared client, acme-reporting, with plain values."""
    (root / "clients").mkdir(parents=True)
    (root / "clients" / "acme.yaml").write_text(
        "clients:\n  - client_id: acme-reporting\n    name: Reporting\n"
        "    email: data@acme.example\n    partner: acme\n"
    )
    (root / "oauth2-sync.yaml").write_text(yaml.safe_dump({
        "registry": {"url": url, "retries": 1},
        "clients": {"paths": ["clients/**/*.yaml"]},
        "teams": {"payments": {"paths": ["clients/**"], "partners": ["acme"]}},
        "secrets": {"directory": ".secrets"},
    }))


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH2_SYNC_")}
    env.update(NO_COLOR="1", OAUTH2_SYNC_CLIENT_ID=CI[0], OAUTH2_SYNC_CLIENT_SECRET=CI[1])
    return subprocess.run(
        [sys.executable, "-m", "oauth2_sync", *args], cwd=root, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.fixture
def hostile(
    tmp_path: Path, start_registry_server: Callable[..., RegistryServer]
) -> Path:
    server = start_registry_server()
    hostile_registry(server)
    root = tmp_path / "repo"
    write_repo(root, server.base_url)
    return root


def assert_no_control_characters(text: str) -> None:
    assert not any(ch in text for ch in CONTROL), repr(text[:300])


def assert_safe_markdown(output: str) -> None:
    assert output.count("<details>") == output.count("</details>") > 0
    outside_code = re.sub(r"<code>.*?</code>", "", output, flags=re.S)
    for fragment in ("@", "<img", "](", "<!--", "<script", "`tick`", "**bold**"):
        assert fragment not in outside_code, fragment
    for fragment in ("<img", "</summary><", "<!--", "<script"):
        assert fragment not in output, fragment
    for section in re.findall(r"<details>.*?</details>", output, re.S):
        assert "\n\n" not in section
    assert_no_control_characters(output)


def test_hostile_values_are_escaped_in_every_format(hostile: Path) -> None:
    plan_text = run(hostile, "plan", "--prune")
    assert plan_text.returncode == 2, plan_text.stderr
    assert_no_control_characters(plan_text.stdout + plan_text.stderr)
    assert '- client "../../etc/passwd" {' in plan_text.stdout
    assert '- client "acme-x\\nx" {' in plan_text.stdout
    assert '"Evil \\x1b[31mRED\\x1b[0m\\x07 \\u202etxt.exe </details>' in plan_text.stdout

    plan_md = run(hostile, "plan", "--prune", "--format", "markdown")
    assert plan_md.returncode == 2
    assert_safe_markdown(plan_md.stdout)
    assert "&lt;img src=x onerror=alert(1)&gt;" in plan_md.stdout

    plan_json = run(hostile, "plan", "--prune", "--format", "json")
    document = json.loads(plan_json.stdout)
    assert {c["client_id"] for c in document["changes"]} >= set(ESCAPING_IDS[:3])
    assert plan_json.stdout.isascii()

    drift_text = run(hostile, "drift")
    assert drift_text.returncode == 2
    assert_no_control_characters(drift_text.stdout + drift_text.stderr)
    assert '"@octocat\\x1b[2J"' in drift_text.stdout

    drift_md = run(hostile, "drift", "--format", "markdown")
    assert_safe_markdown(drift_md.stdout)

    junit = run(hostile, "drift", "--format", "junit")
    assert_no_control_characters(junit.stdout)
    suites = ET.fromstring(junit.stdout)
    names = {case.get("name") for case in suites.iter("testcase")}
    assert {"acme-reporting", "acme-web-portal", "../../etc/passwd"} <= names

    applied = run(hostile, "apply", "--auto-approve", "--prune", "--allow-unsafe")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert_no_control_characters(applied.stdout + applied.stderr)
    assert "acme-x\\nx: deleted\n" in applied.stdout
    assert run(hostile, "drift").returncode == 0


def test_export_never_writes_outside_out_whatever_ids_the_registry_returns(
    hostile: Path, tmp_path: Path
) -> None:
    before = {p for p in tmp_path.rglob("*")}
    out = tmp_path / "out"
    exported = run(hostile, "export", "--out", str(out))
    assert exported.returncode == 1
    assert_no_control_characters(exported.stdout + exported.stderr)
    written = {p for p in tmp_path.rglob("*")} - before
    assert written
    assert all(p.is_relative_to(out) for p in written), written
    assert sorted(p.name for p in written if p.is_file()) == ["acme-web-portal.yaml"]
    assert not Path("/tmp/absolute.yaml").exists()
    for client_id in ESCAPING_IDS[:4]:
        shown = client_id.replace("\n", "\\n")
        assert f"Error: {shown}: " in exported.stderr
    data = yaml.safe_load((out / "clients" / "acme-web-portal.yaml").read_text())
    assert data["clients"][0]["name"] == NAME  # kept exactly, as a quoted YAML string


# --- malformed and oversized answers --------------------------------------------------------


@pytest.fixture
def proxy(registry_server: RegistryServer) -> Iterator[FaultProxy]:
    running = start_proxy(proxy_origin(registry_server.base_url))
    yield running
    running.stop()


PAGE = "/v1/oauth2-clients?page=0"


@pytest.mark.parametrize(
    ("endpoint", "body", "message"),
    [
        (("GET", "/v1/partners"), b"<html>oops</html>",
         "GET /v1/partners: 200 OK: the response is not JSON"),
        (("GET", "/v1/partners"), b'[{"id": "one"}]',
         "the registry sent a malformed partner: {'id': 'one'}"),
        (("GET", "/v1/partners"), b'{"partners": []}',
         "GET /v1/partners: the registry did not send a list"),
        (("GET", PAGE), b'{"total": 1, "list": null}',
         "GET /v1/oauth2-clients?page=0&pageSize=5000: not a page of clients"),
        (("GET", PAGE), b"[" * 100_000 + b"]" * 100_000,
         "GET /v1/oauth2-clients?page=0&pageSize=5000: 200 OK: the response is not JSON"),
        (("GET", PAGE), b'{"total": 1, "list": [{"clientId": "acme-x\\u001b[2J"}]}',
         "the registry sent a malformed client: {'clientId': 'acme-x\\x1b[2J'}"),
        (("POST", "/oauth/token"), b'{"access_token": 5}',
         "POST /oauth/token: the token endpoint sent no access_token"),
    ],
    ids=["not-json", "bad-partner", "partners-not-a-list", "list-null", "nested-100k",
         "client-missing-fields", "token-not-a-string"],
)
def test_malformed_answers_are_one_line_errors(
    proxy: FaultProxy, tmp_path: Path, endpoint: tuple[str, str], body: bytes, message: str
) -> None:
    write_repo(tmp_path, proxy.base_url)
    method, path = endpoint
    proxy.respond(method, path, 200, body, times=10)
    done = run(tmp_path, "plan")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == f"Error: {message}\n"


def test_an_oversized_answer_is_refused_without_reading_it_all(proxy: FaultProxy) -> None:
    proxy.respond("GET", "/v1/partners", 200, b"[" + b" " * (3 * 1024 * 1024) + b"]")
    registry = HttpRegistry(
        proxy.base_url, Credentials(CI[0], Secret(CI[1])), max_response_bytes=1024 * 1024
    )
    with registry, pytest.raises(RegistryError) as info:
        registry.list_partners()
    assert str(info.value) == (
        "GET /v1/partners: 200 OK: the response is larger than 1 MiB; refusing to read it"
    )
