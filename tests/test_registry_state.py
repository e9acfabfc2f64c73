"""The rfc7592 state file: 0600, atomic writes, locking, validation (real files)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from oauth2_sync.errors import RegistryError
from oauth2_sync.registry.state import Registration, StateFile
from oauth2_sync.secret import Secret

REGISTRY = "rfc7592+http://127.0.0.1:9/reg"
TOKEN = "rat-0123456789-abcdefghij"


def registration(client_id: str = "acme-app", token: str = TOKEN) -> Registration:
    return Registration(
        client_id, f"srv-{client_id}", f"http://127.0.0.1:9/reg/srv-{client_id}", Secret(token)
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_missing_file_starts_empty_and_first_write_creates_folder_0700_file_0600(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state" / "rfc7592-state.json"
    with StateFile(path, REGISTRY) as state:
        assert state.entries() == []
        assert not path.exists()
        state.put(registration())
    assert mode(path.parent) == 0o700
    assert mode(path) == 0o600


def test_document_format(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    with StateFile(path, REGISTRY) as state:
        state.put(registration("globex-etl"))
        state.put(registration("acme-app"))
    assert json.loads(path.read_text()) == {
        "format_version": 1,
        "registry": REGISTRY,
        "clients": {
            "acme-app": {
                "client_id": "srv-acme-app",
                "registration_client_uri": "http://127.0.0.1:9/reg/srv-acme-app",
                "registration_access_token": TOKEN,
            },
            "globex-etl": {
                "client_id": "srv-globex-etl",
                "registration_client_uri": "http://127.0.0.1:9/reg/srv-globex-etl",
                "registration_access_token": TOKEN,
            },
        },
    }


def test_round_trip_put_replace_remove(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    with StateFile(path, REGISTRY) as state:
        state.put(registration("acme-app"))
        state.put(registration("acme-app", token="rotated-token"))
        state.put(registration("acme-other"))
        assert state.remove("acme-other") is True
        assert state.remove("acme-unknown") is False
    with StateFile(path, REGISTRY) as state:
        assert state.entries() == [registration("acme-app", token="rotated-token")]
        assert state.get("acme-app") == registration("acme-app", token="rotated-token")
        assert state.get("acme-other") is None
        assert len(state) == 1


def test_token_is_hidden_in_repr(tmp_path: Path) -> None:
    reg = registration()
    assert TOKEN not in repr(reg)
    assert TOKEN not in str(reg)
    assert "Secret('***')" in repr(reg)


def test_second_open_while_locked_fails_at_once(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    with StateFile(path, REGISTRY), pytest.raises(RegistryError) as caught:
        StateFile(path, REGISTRY)
    assert str(caught.value) == (
        f"{path}: the state file is locked by another oauth2-sync run; wait for it to finish"
    )
    # Released on close: a later run opens it.
    StateFile(path, REGISTRY).close()


def test_lock_is_held_against_another_process(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    with subprocess.Popen(
        [sys.executable, "-c", (
            "import sys\n"
            "from pathlib import Path\n"
            "from oauth2_sync.registry.state import StateFile\n"
            f"s = StateFile(Path({str(path)!r}), {REGISTRY!r})\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n"
            "s.close()\n"
        )],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as holder:  # the with closes its pipes
        assert holder.stdout is not None and holder.stdin is not None
        try:
            assert holder.stdout.readline() == "locked\n"
            with pytest.raises(RegistryError, match="locked by another oauth2-sync run"):
                StateFile(path, REGISTRY)
        finally:
            holder.stdin.close()
            holder.wait(timeout=30)
    StateFile(path, REGISTRY).close()


def test_failed_write_keeps_the_old_content_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.json"
    with StateFile(path, REGISTRY) as state:
        state.put(registration("acme-app"))
        before = path.read_bytes()

        def refuse(src: str, dst: str) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "replace", refuse)
        with pytest.raises(RegistryError) as caught:
            state.put(registration("acme-other"))
        assert str(caught.value) == f"{path}: cannot write the state file: No space left on device"
        # Memory follows the file: the failed entry is not recorded.
        assert state.get("acme-other") is None
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json", "s.json.lock"]


def test_loose_mode_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    with StateFile(path, REGISTRY) as state:
        state.put(registration())
    path.chmod(0o644)
    with StateFile(path, REGISTRY) as state:
        assert state.get("acme-app") == registration()
    assert mode(path) == 0o600


def test_parallel_puts_from_threads_all_land(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    with StateFile(path, REGISTRY) as state:
        threads = [
            threading.Thread(target=state.put, args=(registration(f"acme-app{i}"),))
            for i in range(20)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    with StateFile(path, REGISTRY) as state:
        assert len(state) == 20


def test_closed_state_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    state = StateFile(path, REGISTRY)
    state.close()
    state.close()  # closing twice is harmless
    with pytest.raises(RegistryError) as caught:
        state.put(registration())
    assert str(caught.value) == f"{path}: the state file is closed"


def test_state_of_another_registry_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    with StateFile(path, REGISTRY) as state:
        state.put(registration())
    with pytest.raises(RegistryError) as caught:
        StateFile(path, "rfc7592+https://other.example/reg")
    assert str(caught.value) == (
        f"{path}: the state file belongs to the registry '{REGISTRY}', not "
        "'rfc7592+https://other.example/reg'; point registry.state_file at another file, "
        'or edit its "registry" if the server moved'
    )
    # The failed open released its lock.
    StateFile(path, REGISTRY).close()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "the state file is not valid JSON"),
        (b"\xff\xfe", "the state file is not valid JSON"),
        ("[]", "not an oauth2-sync rfc7592 state file"),
        ('{"format_version": 1, "registry": "x"}', "not an oauth2-sync rfc7592 state file"),
        (
            json.dumps({"format_version": 2, "registry": REGISTRY, "clients": {}}),
            "state format_version 2 is not supported (this oauth2-sync reads 1)",
        ),
        (
            json.dumps({"format_version": 1, "registry": REGISTRY,
                        "clients": {"acme-app": {"client_id": "x"}}}),
            "not an oauth2-sync rfc7592 state file (entry 'acme-app' is malformed)",
        ),
    ],
)
def test_malformed_state_files(tmp_path: Path, content: str | bytes, message: str) -> None:
    path = tmp_path / "s.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(RegistryError) as caught:
        StateFile(path, REGISTRY)
    assert str(caught.value) == f"{path}: {message}"
