"""The findings of the outside attack review of the fixes of issues #12 and #13.

Each test reproduces one finding with real processes, real files and the local or the
reference registry; none mocks a request.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.configrepo import client, write_repo

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "examples" / "registry-seed.yaml"
STORE_SECRET = ROOT / "examples" / "ci" / "store-secret"
WITHHELD = "(output withheld: it may contain the secret)"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OAUTH2_SYNC_", "VAULT_"))}
    env.pop("CI", None)
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


def cli(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oauth2_sync", *args], cwd=root, env=env or clean_env(),
        capture_output=True, text=True, timeout=120, check=False,
    )


def local_repo(root: Path, secrets: dict[str, object], *ids: str) -> Path:
    registry = {"url": "local:.oauth2-sync/registry.db", "seed": str(SEED)}
    write_repo(root, [client(i) for i in ids or ("acme-reporting",)],
               extra={"registry": registry, "secrets": secrets})
    return root


# --- 1. a failing sink's output: no piece of the secret, ordinary words unmasked --------

SPLIT_SINK = r"""
import json, sys
s = json.loads(sys.stdin.read())["client_secret"]
open(sys.argv[1], "w").write(s)
kind = sys.argv[2]
if kind == "pieces":
    print("got", s[:15], s[15:30], s[30:], "rejected", file=sys.stderr)
elif kind == "xxd":
    h = s.encode().hex()
    print(" ".join(h[i:i + 4] for i in range(0, len(h), 4)), file=sys.stderr)
elif kind == "od":
    b = s.encode()
    print(" ".join(b[i:i + 2][::-1].hex() for i in range(0, len(b), 2)), file=sys.stderr)
else:
    print(list(s), file=sys.stderr)
sys.exit(3)
"""


@pytest.mark.parametrize("kind", ["pieces", "xxd", "od", "list"])
def test_review_1_a_sink_printing_the_secret_in_pieces_shows_no_piece(
    tmp_path: Path, kind: str
) -> None:
    seen = tmp_path / "seen"
    root = local_repo(tmp_path / "repo", {
        "command": [sys.executable, "-c", SPLIT_SINK, str(seen), kind]})
    done = cli(root, "-vv", "apply", "--auto-approve")
    assert done.returncode == 1
    secret = seen.read_text()
    assert len(secret) == 43
    output = done.stdout + done.stderr
    for i in range(len(secret) - 5):
        assert secret[i:i + 6] not in output
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("acme-reporting:")]
    assert line.startswith(
        f"acme-reporting: created, but its secret was not delivered (secret command "
        f"{sys.executable} exited with status 3 (secret of acme-reporting): {WITHHELD})"
    ), line


def test_review_1_the_kit_message_naming_its_variable_is_not_masked(tmp_path: Path) -> None:
    root = local_repo(tmp_path / "repo", {"command": [str(STORE_SECRET)]})
    done = cli(root, "apply", "--auto-approve",
               env=clean_env(OAUTH2_SYNC_SECRET_STORE="s3"))
    assert done.returncode == 1
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("acme-reporting:")]
    assert line.startswith(
        f"acme-reporting: created, but its secret was not delivered (secret command "
        f"{STORE_SECRET} exited with status 1 (secret of acme-reporting): store-secret: "
        "OAUTH2_SYNC_SECRET_STORE must be 'directory' or 'vault', not 's3')"
    ), line


# --- 2. the kit's audit tells a client created again from the one whose secret it holds --


def test_review_2_the_audit_names_a_client_created_again_whose_secret_was_lost(
    tmp_path: Path,
) -> None:
    root = tmp_path / "repo"
    store = tmp_path / "store"
    registry = {"url": "local:.oauth2-sync/registry.db", "seed": str(SEED)}
    sink = {"command": [str(STORE_SECRET)]}

    def declare(*ids: str) -> None:
        write_repo(root, [client(i) for i in ids], extra={"registry": registry, "secrets": sink})

    env = clean_env(OAUTH2_SYNC_SECRET_DIR=str(store))
    declare("acme-reporting", "acme-mobile-app")
    assert cli(root, "apply", "--auto-approve", env=env).returncode == 0
    first = (store / "acme-reporting.json").read_text()
    declare("acme-mobile-app")
    deleted = cli(root, "apply", "--auto-approve", "--prune", "--allow-unsafe", env=env)
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    declare("acme-reporting", "acme-mobile-app")
    failing = cli(root, "apply", "--auto-approve",
                  env=env | {"OAUTH2_SYNC_SECRET_STORE": "s3"})
    assert failing.returncode == 1
    assert (store / "acme-reporting.json").read_text() == first

    listed = cli(root, "export", "--list-created", env=env)
    assert listed.returncode == 0, listed.stderr
    created = dict(line.split("\t") for line in listed.stdout.splitlines())
    assert sorted(created) == ["acme-mobile-app", "acme-reporting"]
    old = json.loads(first)["created_at"]
    assert old and created["acme-reporting"] > old
    audit = subprocess.run(
        [sys.executable, str(STORE_SECRET), "--audit"], input=listed.stdout, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert (audit.returncode, audit.stdout) == (1, "")
    assert audit.stderr == (
        f"store-secret: acme-reporting: the secret in {store}/acme-reporting.json is of an "
        f"earlier client of that name (created {old}; the registry's was created "
        f"{created['acme-reporting']}), its own never reached the store\n"
        "store-secret: 1 of 2 client(s) have no secret in the store. Unless their secrets "
        "are kept elsewhere, issue new ones: oauth2-sync rotate-secret acme-reporting\n"
    )


# --- 3. `./prog` in secrets.command is the file beside the settings, never one on PATH ---

MARK_SINK = """#!{python}
import sys
sys.stdin.read()
open({marker!r}, "a").write({who!r} + "\\n")
"""


def test_review_3_a_dot_slash_sink_is_never_looked_up_on_path(tmp_path: Path) -> None:
    root = local_repo(tmp_path / "repo", {"command": ["./sink.py"]})
    marker = tmp_path / "marker"
    decoys = tmp_path / "bin"
    decoys.mkdir()
    for folder, who in ((root, "beside the settings"), (decoys, "decoy on PATH")):
        (folder / "sink.py").write_text(
            MARK_SINK.format(python=sys.executable, marker=str(marker), who=who))
        (folder / "sink.py").chmod(0o755)
    env = clean_env(PATH=f"{decoys}{os.pathsep}{os.environ['PATH']}")
    done = cli(root, "apply", "--auto-approve", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert marker.read_text() == "beside the settings\n"


# --- 4. no folder is created through a linked folder leading out of the repository ---------


def test_review_4_the_state_file_is_not_created_through_a_linked_folder(tmp_path: Path) -> None:
    outside = tmp_path / "x"
    outside.mkdir()
    root = tmp_path / "repo"
    write_repo(root, [client("acme-reporting")], extra={"registry": {
        "url": "rfc7592+http://127.0.0.1:9/reg", "state_file": "lnk/sub/state.json"}})
    (root / "lnk").symlink_to(outside)
    done = cli(root, "plan")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "Error: registry.state_file: lnk/sub would be created through "
        f"{root}/lnk, "
        f"which resolves to {outside}, outside the settings' folder {root} (a linked "
        "parent folder)\n"
    )
    assert list(outside.iterdir()) == []


def test_review_4_no_secret_folder_is_created_through_a_linked_folder(tmp_path: Path) -> None:
    outside = tmp_path / "x"
    outside.mkdir()
    root = local_repo(tmp_path / "repo", {"directory": "linked/deep/.secrets"})
    (root / "linked").symlink_to(outside)
    done = cli(root, "apply", "--auto-approve")
    assert (done.returncode, done.stderr) == (1, (
        f"Error: secret folder linked/deep/.secrets resolves to {outside}/deep/.secrets, "
        f"outside the settings' folder {root}; a linked parent folder?; nothing was "
        "changed\n"
    ))
    assert list(outside.iterdir()) == []


# --- 5. URLs read from the rfc7592 state file pass the URL check before any use ----------


def test_review_5_a_state_file_url_with_user_info_is_refused_unsent(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    url = f"rfc7592+http://127.0.0.1:{port}/reg"
    root = tmp_path / "repo"
    write_repo(root, [client("acme-reporting")], extra={"registry": {
        "url": url, "state_file": ".oauth2-sync/rfc7592-state.json"}})
    state = root / ".oauth2-sync" / "rfc7592-state.json"
    state.parent.mkdir()
    state.write_text(json.dumps({"format_version": 1, "registry": url, "clients": {
        "acme-reporting": {
            "client_id": "abc", "registration_access_token": "token-for-tests",
            "registration_client_uri": f"http://user:pw@127.0.0.1:{port}/reg/abc"}}}))
    state.chmod(0o600)
    try:
        done = cli(root, "plan")
        with pytest.raises(TimeoutError):
            listener.accept()
    finally:
        listener.close()
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "Error: .oauth2-sync/rfc7592-state.json: the registration client URI of 'acme-reporting' is refused: it "
        "holds user info (credentials belong in registry.auth); correct or remove its "
        "entry in the state file\n"
    )


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/v1?x=@evil", "http://127.0.0.1:9/v1#x", "rfc7592+http://127.0.0.1:9/reg?x",
])
def test_review_5_a_registry_url_with_a_query_or_fragment_is_refused(
    tmp_path: Path, url: str
) -> None:
    registry: dict[str, object] = {"url": url}
    if url.startswith("rfc7592"):
        registry["state_file"] = ".oauth2-sync/rfc7592-state.json"
    write_repo(tmp_path, [client("acme-reporting")], extra={"registry": registry})
    done = cli(tmp_path, "plan", env=clean_env(
        OAUTH2_SYNC_CLIENT_ID="x", OAUTH2_SYNC_CLIENT_SECRET="y"))
    what = "the registration endpoint" if url.startswith("rfc7592") else "registry.url"
    tail = "" if url.startswith("rfc7592") else "; use https://HOST/.../v1"
    assert (done.returncode, done.stdout, done.stderr) == (1, "", (
        f"Error: refusing {what}: it holds a query or fragment ('?' or '#'){tail}\n"
    ))


# --- 6. file names in plan, apply and drift messages are escaped as validate escapes them --

FORGED = "y\n::error file=z::pwn\x1b[2J"


@pytest.mark.parametrize("command", [["plan"], ["apply", "--auto-approve"], ["drift"]])
def test_review_6_a_file_name_cannot_forge_a_workflow_command(
    tmp_path: Path, command: list[str]
) -> None:
    root = local_repo(tmp_path / "repo", {"directory": ".secrets"})
    doc = {"clients": [client("acme-web-portal").to_document()]}
    (root / "clients" / "acme" / f"{FORGED}.yaml").write_text(yaml.safe_dump(doc))
    done = cli(root, *command)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "clients/acme/y\\x0a::error file=z::pwn\\x1b[2J.yaml:1:1: error: [team-ownership] "
        "no team in the settings owns this file (teams.*.paths)\n"
    )


# --- 7. a sink that failed is named as such; the client counts as created ------------------


def test_review_7_a_failed_sink_is_reported_as_such_not_as_a_stopped_run(tmp_path: Path) -> None:
    root = local_repo(tmp_path / "repo", {"command": [sys.executable, "-c", "raise SystemExit(5)"]})
    applied = cli(root, "apply", "--auto-approve")
    assert applied.returncode == 1
    lines = applied.stdout.splitlines()
    assert lines[-2:] == [
        f"acme-reporting: created, but its secret was not delivered (secret command "
        f"{sys.executable} exited with status 5 (secret of acme-reporting)); run "
        "`oauth2-sync rotate-secret acme-reporting` to issue a new one",
        "Apply finished with problems: 1 created, 0 updated, 0 deleted; 1 without a "
        "delivered secret.",
    ]
    planned = cli(root, "plan")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    (warning,) = [x for x in planned.stderr.splitlines() if "acme-reporting" in x]
    since = warning.split("(", 1)[1].split(")", 1)[0]
    assert warning == (
        f"Warning: acme-reporting was created ({since}), but its secret was not delivered "
        "(the sink failed); run `oauth2-sync rotate-secret acme-reporting` to issue a new one"
    )


# --- 8. explicit YAML tags are refused where they stand ---------------------------------


def test_review_8_explicit_tags_are_refused_at_the_tag(tmp_path: Path) -> None:
    root = local_repo(tmp_path / "repo", {"directory": ".secrets"})
    target = root / "clients" / "acme" / "clients.yaml"
    text = target.read_text()
    text = text.replace("name: Service acme-reporting", "name: !!str 123")
    text += "  access_token_ttl: !!int 600\n"
    target.write_text(text)
    done = cli(root, "validate")
    lines = done.stdout.splitlines()
    name_line = text.splitlines().index("  name: !!str 123") + 1
    ttl_line = len(text.splitlines())
    assert (done.returncode, lines) == (1, [
        f"clients/acme/clients.yaml:{name_line}:9: error: [yaml-syntax] explicit tags "
        "(!!str) are not allowed: write the value itself (quoted, to mean text)",
        "1 file, 0 clients: 1 error, 0 warnings.",
    ]), (ttl_line, done.stdout)
