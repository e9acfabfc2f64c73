"""Secret sinks: a directory of 0600 files, or a command fed on stdin."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support.configrepo import client, write_repo

from oauth2_sync import sink as sink_module
from oauth2_sync.errors import SecretSinkError
from oauth2_sync.secret import Secret
from oauth2_sync.settings import load_settings
from oauth2_sync.sink import (
    EXCERPT,
    WITHHELD,
    CommandSink,
    DirectorySink,
    encodings,
    excerpt,
    leaks,
    open_sink,
    payload,
    redact,
)

SECRET = Secret("s3cr3t-value-0123456789")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_directory_sink_writes_one_private_json_file_per_client(tmp_path: Path) -> None:
    folder = tmp_path / "deep" / ".secrets"
    sink = DirectorySink(folder)
    sink.deliver("acme-reporting", SECRET)
    target = folder / "acme-reporting.json"
    assert json.loads(target.read_text()) == {
        "client_id": "acme-reporting", "registry_client_id": "acme-reporting",
        "client_secret": "s3cr3t-value-0123456789",
    }
    assert mode(target) == 0o600
    assert mode(folder) == 0o700
    assert sorted(p.name for p in folder.iterdir()) == ["acme-reporting.json"]
    assert sink.description == f"directory {folder}"


def test_a_second_secret_replaces_the_first_atomically(tmp_path: Path) -> None:
    sink = DirectorySink(tmp_path)
    sink.deliver("acme-x", SECRET)
    sink.deliver("acme-x", Secret("second"))
    assert json.loads((tmp_path / "acme-x.json").read_text())["client_secret"] == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["acme-x.json"]


def test_the_directory_sink_is_safe_to_share_between_threads(tmp_path: Path) -> None:
    sink = DirectorySink(tmp_path / "s")
    threads = [
        threading.Thread(target=sink.deliver, args=(f"acme-{i}", Secret(f"v{i}")))
        for i in range(16)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(list((tmp_path / "s").iterdir())) == 16


@pytest.mark.parametrize("client_id", ["../escape", ".hidden", "a/b", "", "x\x00y"])
def test_a_client_id_that_cannot_name_a_file_is_refused(tmp_path: Path, client_id: str) -> None:
    with pytest.raises(SecretSinkError) as caught:
        DirectorySink(tmp_path).deliver(client_id, SECRET)
    assert str(caught.value) == (
        f"client ID {client_id!r} cannot name a secret file "
        "(letters, digits, '.', '_' and '-' only, not starting with '.')"
    )
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_directory_is_reported_without_the_secret(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SecretSinkError) as caught:
        DirectorySink(blocker / "sub").deliver("acme-x", SECRET)
    assert str(caught.value) == f"cannot write the secret of acme-x to {blocker / 'sub'}: Not a directory"


def test_the_command_sink_feeds_json_on_stdin_and_the_id_in_the_environment(
    tmp_path: Path,
) -> None:
    out = tmp_path / "received"
    script = (
        "import os, sys; e = os.environ; "
        f"open({str(out)!r}, 'w').write(e['OAUTH2_SYNC_CLIENT_ID'] + ' ' "
        "+ e['OAUTH2_SYNC_REGISTRY_CLIENT_ID'] + '\\n' + sys.stdin.read())"
    )
    CommandSink([sys.executable, "-c", script]).deliver("acme-x", SECRET)
    ids, body = out.read_text().split("\n", 1)
    assert ids == "acme-x acme-x"
    assert json.loads(body) == {
        "client_id": "acme-x", "registry_client_id": "acme-x", "client_secret": SECRET.reveal(),
    }
    CommandSink([sys.executable, "-c", script]).deliver("acme-x", SECRET, "Zk81-issued")
    ids, body = out.read_text().split("\n", 1)
    assert ids == "acme-x Zk81-issued"
    assert json.loads(body)["registry_client_id"] == "Zk81-issued"


def test_the_payload_names_the_client_id_the_registry_issued(tmp_path: Path) -> None:
    # A standard OAuth server picks its own client_id: the application needs that one.
    sink = DirectorySink(tmp_path)
    sink.deliver("acme-x", SECRET, "Zk81-issued")
    assert json.loads((tmp_path / "acme-x.json").read_text()) == {
        "client_id": "acme-x", "registry_client_id": "Zk81-issued",
        "client_secret": SECRET.reveal(),
    }
    # Without one of its own, the registry's is ours: the key is always there.
    assert json.loads(payload("acme-x", SECRET)) == {
        "client_id": "acme-x", "registry_client_id": "acme-x", "client_secret": SECRET.reveal(),
    }


def test_a_failing_command_is_reported_with_its_status_and_the_secret_masked() -> None:
    script = "import sys; d = sys.stdin.read(); print('oops', d); sys.exit(3)"
    noisy = (
        "import sys; d = sys.stdin.read(); print(d); "
        "print('cannot store', d, file=sys.stderr); sys.exit(3)"
    )
    with pytest.raises(SecretSinkError) as caught:
        CommandSink([sys.executable, "-c", script]).deliver("acme-x", SECRET)
    assert str(caught.value) == (
        f"secret command {sys.executable} exited with status 3 (secret of acme-x)"
    )
    with pytest.raises(SecretSinkError) as caught:
        CommandSink([sys.executable, "-c", noisy]).deliver("acme-x", SECRET)
    message = str(caught.value)
    assert SECRET.reveal() not in message
    assert message == (
        f"secret command {sys.executable} exited with status 3 (secret of acme-x): "
        'cannot store {"client_id": "acme-x", "registry_client_id": "acme-x", '
        '"client_secret": "***"}'
    )


def test_a_missing_command_is_reported() -> None:
    with pytest.raises(SecretSinkError) as caught:
        CommandSink(["/nonexistent/store-secret"]).deliver("acme-x", SECRET)
    assert str(caught.value) == (
        "secret command /nonexistent/store-secret not found (secret of acme-x)"
    )


def test_open_sink_follows_the_settings(tmp_path: Path) -> None:
    directory = load_settings(write_repo(tmp_path / "a", []))
    sink = open_sink(directory)
    assert isinstance(sink, DirectorySink)
    assert sink.directory == tmp_path / "a" / ".secrets"
    command = load_settings(
        write_repo(tmp_path / "b", [], extra={"secrets": {"command": ["vault", "write"]}})
    )
    assert isinstance(open_sink(command), CommandSink)
    none = load_settings(write_repo(tmp_path / "c", [], extra={"secrets": {}}))
    assert open_sink(none) is None


def test_the_payload_is_the_only_place_the_secret_is_revealed() -> None:
    assert json.loads(payload("acme-x", SECRET))["client_secret"] == SECRET.reveal()
    assert SECRET.reveal() not in repr(SECRET) + str(SECRET)
    assert os.environ.get("OAUTH2_SYNC_CLIENT_ID") is None


def test_the_command_does_not_inherit_the_registry_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTH2_SYNC_CLIENT_SECRET", "api-secret-of-this-run")
    monkeypatch.setenv("OAUTH2_SYNC_PASSWORD", "api-password-of-this-run")
    monkeypatch.setenv("STORE_TOKEN", "the-store-needs-this")
    out = tmp_path / "env.json"
    script = f"import json, os; json.dump(dict(os.environ), open({str(out)!r}, 'w'))"
    settings = load_settings(
        write_repo(
            tmp_path / "repo", [], extra={"secrets": {"command": [sys.executable, "-c", script]}}
        )
    )
    sink = open_sink(settings)
    assert sink is not None
    sink.deliver("acme-x", SECRET)
    seen = json.loads(out.read_text())
    assert "OAUTH2_SYNC_CLIENT_SECRET" not in seen
    assert "OAUTH2_SYNC_PASSWORD" not in seen
    assert (seen["STORE_TOKEN"], seen["OAUTH2_SYNC_CLIENT_ID"]) == ("the-store-needs-this", "acme-x")


def test_a_relative_command_path_is_next_to_the_settings(tmp_path: Path) -> None:
    settings = load_settings(
        write_repo(tmp_path / "repo", [], extra={"secrets": {"command": ["ci/store", "--x"]}})
    )
    sink = open_sink(settings)
    assert isinstance(sink, CommandSink)
    assert sink.argv == (str(tmp_path / "repo" / "ci" / "store"), "--x")


# --- a failing command's output: redacted whatever the encoding (issue #12, 5) ----------

LEAKY_SINK = r"""
import base64, codecs, json, os, pathlib, sys, urllib.parse
data = sys.stdin.read()
secret = json.loads(data)["client_secret"]
pathlib.Path(os.environ["LEAK_SEEN"]).write_text(secret)
raw = secret.encode()
spellings = [
    base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode().rstrip("="),
    raw.hex(), raw.hex().upper(), urllib.parse.quote(data), data[::-1],
    base64.b64encode(data.encode()).decode(), codecs.encode(data, "rot13"),
    json.dumps({"blob": base64.b32encode(raw).decode()}),
]
for spelling in spellings:
    print("stored?", spelling)
    print("vault said:", spelling, file=sys.stderr)
print("cannot store", json.dumps(data), "as", base64.b64encode(raw).decode(), file=sys.stderr)
sys.exit(4)
"""


def test_a_failing_command_output_is_masked_in_every_encoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAK_SEEN", str(tmp_path / "seen"))
    sink = CommandSink([sys.executable, "-c", LEAKY_SINK])
    with pytest.raises(SecretSinkError) as caught:
        sink.deliver("acme-x", SECRET)
    assert str(caught.value) == (
        f"secret command {sys.executable} exited with status 4 (secret of acme-x): "
        'cannot store "{\\"client_id\\": \\"acme-x\\", \\"registry_client_id\\": '
        '\\"acme-x\\", \\"client_secret\\": \\"***\\"}" as ***'
    )


def test_apply_shows_no_secret_a_failing_command_printed(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    root = tmp_path / "repo"
    seed = Path(__file__).parents[1] / "examples" / "registry-seed.yaml"
    write_repo(root, [client("acme-reporting")], extra={
        "registry": {"url": "local:.oauth2-sync/registry.db", "seed": str(seed)},
        "secrets": {"command": [sys.executable, "-c", LEAKY_SINK]},
    })
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH2_SYNC_")}
    env.update(NO_COLOR="1", LEAK_SEEN=str(seen))
    done = subprocess.run(
        [sys.executable, "-m", "oauth2_sync", "-vv", "apply", "--auto-approve"], cwd=root,
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 1
    secret = seen.read_text()
    assert len(secret) >= 16
    for spelling in encodings(secret):
        assert spelling not in done.stdout + done.stderr, spelling
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("acme-reporting:")]
    assert line == (
        f"acme-reporting: created, but its secret was not delivered (secret command "
        f"{sys.executable} exited with status 4 (secret of acme-reporting): cannot store "
        '"{\\"client_id\\": \\"acme-reporting\\", \\"registry_client_id\\": '
        '\\"acme-reporting\\", \\"client_secret\\": \\"***\\", \\"created_at\\": \\"***\\"}" '
        "as ***); run "
        "`oauth2-sync rotate-secret acme-reporting` to issue a new one"
    )


# --- the sink is checked before the first write (issue #12, 6; issue #13, 8) -----------------

SEED = Path(__file__).parents[1] / "examples" / "registry-seed.yaml"


def cli_in(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH2_SYNC_")}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "oauth2_sync", *args], cwd=root, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )


def sink_repo(root: Path, secrets: dict[str, object]) -> Path:
    registry = {"url": "local:.oauth2-sync/registry.db", "seed": str(SEED)}
    write_repo(root, [client("acme-reporting")], extra={"registry": registry, "secrets": secrets})
    return root


def nothing_created(root: Path) -> bool:
    from oauth2_sync.refserver.store import RegistryStore

    store = RegistryStore(root / ".oauth2-sync" / "registry.db")
    try:
        return store.list_clients() == []
    finally:
        store.close()


def test_a_world_writable_secret_folder_is_refused_before_any_create(tmp_path: Path) -> None:
    root = sink_repo(tmp_path / "repo", {"directory": ".secrets"})
    (root / ".secrets").mkdir()
    (root / ".secrets").chmod(0o777)
    done = cli_in(root, "apply", "--auto-approve")
    assert (done.returncode, done.stderr) == (
        1,
        "Error: secret folder .secrets is writable by other users (mode 0777); run "
        "`chmod 700 .secrets`; nothing was changed\n",
    )
    assert nothing_created(root)
    (root / ".secrets").chmod(0o700)
    assert cli_in(root, "apply", "--auto-approve").returncode == 0


def test_a_linked_secret_folder_is_refused_before_any_create(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o700)
    root = sink_repo(tmp_path / "repo", {"directory": ".secrets"})
    (root / ".secrets").symlink_to(outside)
    done = cli_in(root, "apply", "--auto-approve")
    assert (done.returncode, done.stderr) == (
        1,
        "Error: secret folder .secrets is a symbolic link; refusing to write secrets where "
        "it points: make it a real folder (mkdir -m 700); nothing was changed\n",
    )
    assert list(outside.iterdir()) == []
    assert nothing_created(root)
    # A real folder whose parent is a link out of the repository: refused too.
    (root / ".secrets").unlink()
    (root / "vault").symlink_to(outside)
    sink_repo(root, {"directory": "vault/.secrets"})
    done = cli_in(root, "apply", "--auto-approve")
    assert (done.returncode, done.stderr) == (
        1,
        f"Error: secret folder vault/.secrets resolves to {outside.resolve()}/.secrets, "
        f"outside the settings' folder {root.resolve()}; a linked parent folder?; nothing "
        "was changed\n",
    )
    assert nothing_created(root)


def test_a_sink_command_that_cannot_run_is_refused_before_any_create(tmp_path: Path) -> None:
    root = sink_repo(tmp_path / "repo", {"command": ["./ci/store-secret"]})
    done = cli_in(root, "apply", "--auto-approve")
    assert (done.returncode, done.stderr) == (
        1,
        "Error: secret command ci/store-secret not found; check secrets.command in the "
        "settings; nothing was changed\n",
    )
    (root / "ci").mkdir()
    (root / "ci" / "store-secret").write_text("#!/bin/sh\ncat > /dev/null\n")
    done = cli_in(root, "apply", "--auto-approve")
    assert (done.returncode, done.stderr) == (
        1,
        "Error: secret command ci/store-secret is not executable; run "
        "`chmod +x ci/store-secret`; nothing was changed\n",
    )
    sink_repo(root, {"command": ["no-such-secret-store-on-path"]})
    done = cli_in(root, "apply", "--auto-approve")
    assert (done.returncode, done.stderr) == (
        1,
        "Error: secret command no-such-secret-store-on-path not found on PATH; check "
        "secrets.command in the settings; nothing was changed\n",
    )
    assert nothing_created(root)
    done = cli_in(root, "rotate-secret", "acme-reporting")
    assert (done.returncode, done.stderr) == (
        1,
        "Error: secret command no-such-secret-store-on-path not found on PATH; check "
        "secrets.command in the settings; nothing was changed\n",
    )


def test_plan_warns_when_it_creates_clients_and_no_sink_is_configured(tmp_path: Path) -> None:
    root = sink_repo(tmp_path / "repo", {})
    done = cli_in(root, "plan")
    assert done.returncode == 2
    assert done.stderr == (
        "Warning: the plan creates 1 client but no secret sink is configured (settings: "
        "secrets.directory or secrets.command); apply will refuse to create them\n"
    )
    sink_repo(root, {"directory": ".secrets"})
    assert cli_in(root, "plan").stderr == ""


def test_the_command_sink_preflight_names_what_is_missing(tmp_path: Path) -> None:
    # In process, beside the CLI test above: the messages and the checks in their order.
    store = tmp_path / "store-secret"
    refusals = {
        str(store): f"secret command {store} not found; check secrets.command in the settings",
        "no-such-secret-store-on-path": "secret command no-such-secret-store-on-path not "
        "found on PATH; check secrets.command in the settings",
    }
    for program, message in refusals.items():
        with pytest.raises(SecretSinkError) as caught:
            CommandSink([program]).preflight()
        assert str(caught.value) == message
    store.write_text("#!/bin/sh\ncat > /dev/null\n")
    with pytest.raises(SecretSinkError) as caught:
        CommandSink([str(store)]).preflight()
    assert str(caught.value) == (
        f"secret command {store} is not executable; run `chmod +x {store}`"
    )
    store.chmod(0o700)
    CommandSink([str(store)]).preflight()
    CommandSink(["sh", "-c", "cat"]).preflight()  # found on PATH


def test_the_command_sink_hands_on_the_creation_time_when_known(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "received"
    script = (
        "import os, sys; "
        f"open({str(out)!r}, 'w').write(os.environ.get('OAUTH2_SYNC_CLIENT_CREATED_AT', '-') "
        "+ '\\n' + sys.stdin.read())"
    )
    sink = CommandSink([sys.executable, "-c", script])
    sink.deliver_created("acme-x", SECRET, "Zk81-issued", "2026-01-31T12:00:00Z")
    when, body = out.read_text().split("\n", 1)
    assert when == "2026-01-31T12:00:00Z"
    assert json.loads(body) == {
        "client_id": "acme-x", "registry_client_id": "Zk81-issued",
        "client_secret": SECRET.reveal(), "created_at": "2026-01-31T12:00:00Z",
    }
    monkeypatch.setenv("OAUTH2_SYNC_CLIENT_CREATED_AT", "stale")  # never passed on
    sink.deliver_created("acme-x", SECRET, None, None)
    when, body = out.read_text().split("\n", 1)
    assert when == "-"
    assert "created_at" not in json.loads(body)


@pytest.mark.parametrize("client_id", ["", "acme\x00x"])
def test_an_id_no_sink_can_hand_on_is_refused_before_a_secret_is_issued(client_id: str) -> None:
    with pytest.raises(SecretSinkError) as caught:
        CommandSink(["true"]).check_id(client_id)
    assert str(caught.value) == f"client ID {client_id!r} cannot be handed to a sink"
    CommandSink(["true"]).check_id("acme-x")  # anything else goes


# --- masking, in process (the CLI tests above see it only from a subprocess) ----------------

NO_SECRET = Secret("")
"""Nothing to mask by spelling: only the token rule applies."""


@pytest.mark.parametrize(
    ("token", "masked"),
    [
        ("a1a1a1a1a1a1a1a1", True),  # letters and digits, however repetitive
        ("A1A1A1A1A1A1A1A1", True),
        ("AbCdEfGhIjKlMnOp", True),  # 16 distinct letters: exactly 4 bits each
        ("AbCdEfGhIjKlMnOpQrSt", True),
        ("aaaaaaaaAAAAAAAAaaaa", False),  # letters only, low entropy
        ("-Quickly-Jumping-Foxes-", False),  # words, once the dashes around are stripped
        ("XQuickly-Jumping-Fox:", True),  # not words: entropy decides
        ("OAUTH2_SYNC_SECRET_STORE", False),  # an upper-case identifier
    ],
)
def test_long_tokens_are_masked_by_their_entropy(token: str, masked: bool) -> None:
    assert redact(f"said {token}, ok", NO_SECRET) == f"said {'***' if masked else token}, ok"


def test_a_short_secret_is_masked_in_its_spellings_the_longest_first() -> None:
    assert redact("pw hunter2, 2retnuh", Secret("hunter2")) == "pw ***, ***"
    # "%2B" holds "2B", the hex of "+": masked whole, not as "%***".
    assert redact("got %2B", Secret("+")) == "got ***"


def test_a_piece_of_the_secret_is_found_in_any_spelling_separators_ignored() -> None:
    value = "s3cr3t-value-0123456789"
    raw = value.encode()
    od = [raw[i:i + 2][::-1].hex() for i in range(0, len(raw), 2)]  # as od -x prints
    assert leaks(" ".join(od[2:]), Secret(value))  # not from the first pair on
    assert leaks(" ".join(od[2:]).upper(), Secret(value))
    assert leaks("3t-valu", Secret(value))  # across a separator of the secret
    assert leaks("456789", Secret(value))  # its last piece, exactly
    assert not leaks("45678 0123", Secret(value))
    assert leaks("xx abc-123 yy", Secret("abc123"))  # six characters: pieces apply
    assert leaks("has abc!", Secret("abc"))  # shorter: only as a whole
    assert not leaks("has ab-c", Secret("abc"))
    assert not leaks("anything", NO_SECRET)



def test_every_piece_of_the_byte_swapped_hex_of_a_secret_is_found() -> None:
    # Letters in the secret put a-f in its hex, so a window of od -x's output matches
    # only the byte-swapped spelling (an odd length leaves the last byte on its own).
    value = "QwErTy-zXcV-plmOk"
    raw = value.encode()
    flat = "".join(raw[i:i + 2][::-1].hex() for i in range(0, len(raw), 2))
    windows = [flat[i:i + 6] for i in range(len(flat) - 5)]
    assert all(leaks(w, Secret(value)) for w in windows), [
        w for w in windows if not leaks(w, Secret(value))
    ]
    assert all(leaks(w.upper(), Secret(value)) for w in windows)

def test_an_excerpt_is_the_last_line_printable_and_bounded() -> None:
    assert excerpt("first\n\nbad\x1bthing \n\n", NO_SECRET) == "bad?thing"
    assert excerpt("x" * 300, NO_SECRET) == "x" * EXCERPT
    assert excerpt(" \n", NO_SECRET) == ""
    assert excerpt("vault: 3t-valu", Secret("s3cr3t-value-0123456789")) == WITHHELD


def test_a_command_that_hangs_or_cannot_run_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sink_module, "COMMAND_TIMEOUT", 0.2)
    with pytest.raises(SecretSinkError) as caught:
        CommandSink(["sleep", "5"]).deliver("acme-x", SECRET)
    assert str(caught.value) == "secret command sleep took longer than 0.2 s (secret of acme-x)"
    store = tmp_path / "store-secret"
    store.write_text("#!/bin/sh\n")  # not executable
    with pytest.raises(SecretSinkError) as caught:
        CommandSink([str(store), "--flag"]).deliver("acme-x", SECRET)
    assert str(caught.value) == (
        f"cannot run secret command {store}: Permission denied (secret of acme-x)"
    )


def test_a_secret_folder_outside_the_settings_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    with pytest.raises(SecretSinkError) as caught:
        DirectorySink(elsewhere, tmp_path / "root").preflight()
    assert str(caught.value) == (
        f"secret folder {elsewhere} resolves to {elsewhere.resolve()}, outside the "
        f"settings' folder {(tmp_path / 'root').resolve()}; a linked parent folder?"
    )
    DirectorySink(tmp_path / "root" / ".secrets", tmp_path / "root").preflight()


def test_encodings_lists_every_spelling_a_program_may_print() -> None:
    assert encodings("ok?/é> xy") == {
        "ok?/é> xy", "yx >é/?ko", "ok?/\\u00e9> xy",  # as is, reversed, JSON
        "ok%3F%2F%C3%A9%3E%20xy", "ok%3F%2F%C3%A9%3E+xy",  # URL-encoded, as a form
        "b2s/L8OpPiB4eQ==", "b2s/L8OpPiB4eQ", "b2s_L8OpPiB4eQ==", "b2s_L8OpPiB4eQ",
        "6f6b3f2fc3a93e207879", "6F6B3F2FC3A93E207879",
    }
    # Base64 without padding: nothing is stripped from it (it ends in "X" here).
    assert encodings("abW") == {"abW", "Wba", "YWJX", "616257"}


def test_the_directory_sink_keeps_the_registry_s_id_of_a_created_client(tmp_path: Path) -> None:
    DirectorySink(tmp_path).deliver_created("acme-x", SECRET, "Zk81-issued", "2026-01-31")
    assert json.loads((tmp_path / "acme-x.json").read_text())["registry_client_id"] == (
        "Zk81-issued"
    )


def test_a_delivery_is_logged_without_the_secret(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="oauth2_sync.sink"):
        CommandSink(["sh", "-c", "cat > /dev/null"]).deliver("acme-x", SECRET)
    assert caplog.messages == ["secret of acme-x handed to sh"]
    with pytest.raises(ValueError) as caught:
        CommandSink([])
    assert str(caught.value) == "a sink command needs at least the program"


def test_open_sink_keeps_the_folder_inside_and_withholds_every_credential(
    tmp_path: Path,
) -> None:
    directory = open_sink(load_settings(write_repo(tmp_path / "a", [])))
    assert isinstance(directory, DirectorySink)
    assert directory.root == tmp_path / "a"
    command = open_sink(load_settings(
        write_repo(tmp_path / "b", [], extra={"secrets": {"command": ["vault", "write"]}})
    ))
    assert isinstance(command, CommandSink)
    assert "OAUTH2_SYNC_REGISTRATION_ACCESS_TOKEN" in command.withheld
    assert "OAUTH2_SYNC_CLIENT_SECRET" in command.withheld


def test_a_secret_file_that_cannot_replace_its_target_leaves_no_temporary_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = DirectorySink(tmp_path / ".secrets")
    (tmp_path / ".secrets").mkdir(mode=0o700)
    (tmp_path / ".secrets" / "acme-x.json").mkdir()  # in the way of os.replace
    with pytest.raises(SecretSinkError) as caught:
        sink.deliver("acme-x", SECRET)
    assert str(caught.value) == (
        f"cannot write the secret of acme-x to {tmp_path / '.secrets' / 'acme-x.json'}: "
        "Is a directory"
    )
    assert sorted(p.name for p in (tmp_path / ".secrets").iterdir()) == ["acme-x.json"]
    with caplog.at_level(logging.DEBUG, logger="oauth2_sync.sink"):
        sink.deliver("acme-y", SECRET)
    assert caplog.messages == [
        f"secret of acme-y written to {tmp_path / '.secrets' / 'acme-y.json'}"
    ]


def test_the_secret_folder_checks_in_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # In process, beside the CLI tests above: every refusal of _ensure_directory.
    root = tmp_path / "root"
    root.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (root / "link").symlink_to(elsewhere)
    (root / "file").write_text("")
    (root / "dangling").symlink_to(tmp_path / "nowhere")
    (root / "linked").symlink_to(elsewhere)

    def refusal(folder: Path, client_id: str | None = None) -> str:
        sink = DirectorySink(folder, root)
        with pytest.raises(SecretSinkError) as caught:
            if client_id is None:
                sink.preflight()
            else:
                sink.deliver(client_id, SECRET)
        return str(caught.value)

    through = root / "link" / ".secrets"
    assert refusal(through) == (
        f"secret folder {through} resolves to {elsewhere / '.secrets'}, outside the "
        f"settings' folder {root}; a linked parent folder?"
    )
    assert not (elsewhere / ".secrets").exists()
    under_file = root / "file" / ".secrets"
    assert refusal(under_file) == (
        f"cannot create the secret folder {under_file}: Not a directory; check that its "
        "parent is a writable folder"
    )
    assert refusal(under_file, "acme-x") == (
        f"cannot write the secret of acme-x to {under_file}: Not a directory"
    )
    for link in (root / "dangling", root / "linked"):
        assert refusal(link) == (
            f"secret folder {link} is a symbolic link; refusing to write secrets where it "
            "points: make it a real folder (mkdir -m 700)"
        )
    assert refusal(root / "file") == f"secret folder {root / 'file'} is not a folder"
    loose = root / "loose"
    loose.mkdir()
    loose.chmod(0o757)
    assert refusal(loose) == (
        f"secret folder {loose} is writable by other users (mode 0757); "
        f"run `chmod 700 {loose}`"
    )
    with caplog.at_level(logging.WARNING, logger="oauth2_sync.sink"):
        loose.chmod(0o700)
        DirectorySink(loose, root).preflight()
        assert caplog.messages == []
        loose.chmod(0o701)
        DirectorySink(loose, root).preflight()
    assert caplog.messages == [
        f"secret directory {loose} is accessible to other users (mode 701); "
        "0700 is recommended"
    ]
