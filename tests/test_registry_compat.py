"""registry/compat.py against a real Canaille 0.3.6: what it does beyond RFC 7591/7592,
pinned as seen (a new Canaille that behaves otherwise fails here first), and the
answers the adapter gives to it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from support.canaille_peer import CanaillePeer

from oauth2_sync.errors import RegistryError
from oauth2_sync.registry.compat import initial_access_token, refused_token, update_body
from oauth2_sync.registry.metadata import MANAGED_FIELDS, NOT_IN_UPDATE
from oauth2_sync.secret import Secret

SERVICE = {
    "client_name": "Compat probe", "contacts": ["ops@acme.example"], "scope": "openid profile",
    "grant_types": ["client_credentials"], "response_types": [], "redirect_uris": [],
}
DENIED = {
    "error": "access_denied",
    "error_description": "The resource owner or authorization server denied the request",
}


def register(peer: CanaillePeer, token: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = requests.post(peer.registration_endpoint, json=SERVICE, headers=headers, timeout=10)
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def manage(method: str, registration: dict[str, Any], token: str | None = None,
           body: Any = None) -> requests.Response:
    bearer = token or registration["registration_access_token"]
    return requests.request(method, registration["registration_client_uri"], json=body,
                            headers={"Authorization": f"Bearer {bearer}"}, timeout=10)


def test_a_refused_token_is_400_access_denied_on_canaille(canaille: CanaillePeer) -> None:
    registration = register(canaille)
    wrong = manage("GET", registration, token="not-a-token")
    assert (wrong.status_code, wrong.json()) == (400, DENIED)
    assert refused_token(wrong)
    right = manage("GET", registration)
    assert right.status_code == 200
    assert not refused_token(right)
    # The token of a deleted client: the same answer, never 401 or 404.
    assert manage("DELETE", registration).status_code == 204
    gone = manage("GET", registration)
    assert (gone.status_code, gone.json()) == (400, DENIED)
    assert refused_token(gone)


def test_other_400s_are_not_refused_tokens(canaille: CanaillePeer) -> None:
    answer = requests.post(canaille.registration_endpoint, timeout=10,
                           json={**SERVICE, "redirect_uris": ["com.example.app:/cb"],
                                 "grant_types": ["authorization_code"]})
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_client_metadata")
    assert not refused_token(answer)
    not_json = requests.get(f"{canaille.issuer}/oauth/register", timeout=10)
    assert not refused_token(not_json)


def test_canaille_refuses_its_own_answer_and_takes_update_body(canaille: CanaillePeer) -> None:
    registration = register(canaille)
    current = manage("GET", registration).json()
    assert current["jwks"] is None
    echoed = {k: v for k, v in current.items() if k not in NOT_IN_UPDATE}
    refused = manage("PUT", registration, body=echoed)
    assert (refused.status_code, refused.json()) == (
        400, {"error": "invalid_client_metadata", "error_description": "Invalid claim: 'jwks'"}
    )
    sent = {**SERVICE, "client_name": "Renamed"}
    body = update_body(current, sent, server_client_id=current["client_id"],
                       managed=MANAGED_FIELDS, server_owned=NOT_IN_UPDATE)
    assert None not in body.values()
    assert not NOT_IN_UPDATE & set(body)
    updated = manage("PUT", registration, body=body)
    assert updated.status_code == 200, updated.text
    assert updated.json()["client_name"] == "Renamed"
    # No rotation: the registration access token stays the same.
    assert updated.json()["registration_access_token"] == registration["registration_access_token"]


def test_update_body_replaces_the_managed_fields_and_keeps_the_rest() -> None:
    current = {"client_id": "old", "client_name": "Before", "logo_uri": "https://l.example/x.png",
               "jwks": None, "registration_access_token": "t", "client_id_issued_at": 1,
               "redirect_uris": ["https://a.example/cb"]}
    body = update_body(current, {"client_name": "After", "redirect_uris": []},
                       server_client_id="server-id", managed=MANAGED_FIELDS,
                       server_owned=NOT_IN_UPDATE)
    assert body == {"client_id": "server-id", "client_name": "After",
                    "logo_uri": "https://l.example/x.png", "redirect_uris": []}


def test_one_initial_access_token_registers_one_client(canaille: CanaillePeer) -> None:
    token = initial_access_token(None, tuple(canaille.mint_command), client_id="acme-probe")
    assert token is not None
    register(canaille, token.reveal())
    again = requests.post(canaille.registration_endpoint, json=SERVICE, timeout=10,
                          headers={"Authorization": f"Bearer {token.reveal()}"})
    assert (again.status_code, again.json()) == (400, DENIED)
    assert refused_token(again)


def test_without_a_command_the_static_token_is_used() -> None:
    static = Secret("from-the-environment")
    assert initial_access_token(static, None, client_id="acme-probe") is static
    assert initial_access_token(None, None, client_id="acme-probe") is None


@pytest.mark.parametrize(("script", "problem"), [
    ("import sys; print('leaked-token-1'); sys.exit(3)", "exited with status 3"),
    ("print('two words')", "printed no single token"),
    ("pass", "printed no single token"),
])
def test_a_failing_command_is_one_line_without_its_output(script: str, problem: str) -> None:
    command = (sys.executable, "-c", script)
    with pytest.raises(RegistryError) as raised:
        initial_access_token(None, command, client_id="acme-probe")
    assert str(raised.value) == (
        f"creating client acme-probe: the initial access token command {sys.executable} "
        f"{problem}; run it by hand to see why, and check "
        "registry.auth.initial_access_token_command"
    )


def test_a_missing_command_says_so(tmp_path: Path) -> None:
    missing = str(tmp_path / "mint")
    with pytest.raises(RegistryError) as raised:
        initial_access_token(None, (missing,), client_id="acme-probe")
    assert str(raised.value) == (
        f"creating client acme-probe: the initial access token command {missing} could not "
        "run (No such file or directory); check registry.auth.initial_access_token_command"
    )


def test_the_command_gets_the_client_id() -> None:
    command = (sys.executable, "-c",
               "import os; print('tok-' + os.environ['OAUTH2_SYNC_CLIENT_ID'])")
    token = initial_access_token(None, command, client_id="acme-probe")
    assert token is not None and token.reveal() == "tok-acme-probe"


@pytest.mark.parametrize("output", [
    b"tok\xff\xfe\n",  # not UTF-8: no token, not a UnicodeDecodeError
    b"tok\x00en\n",  # a control character: requests would quote the header refusing it
    b"x" * (16 * 1024 + 1),  # more than a token
], ids=["not-utf8", "control", "megabytes"])
def test_output_that_is_no_header_token_is_refused_unshown(tmp_path: Path, output: bytes) -> None:
    printed = tmp_path / "printed"
    printed.write_bytes(output)
    command = (sys.executable, "-c",
               f"import sys; sys.stdout.buffer.write(open({str(printed)!r}, 'rb').read())")
    with pytest.raises(RegistryError) as raised:
        initial_access_token(None, command, client_id="acme-probe")
    assert str(raised.value) == (
        f"creating client acme-probe: the initial access token command {sys.executable} "
        "printed no single token; run it by hand to see why, and check "
        "registry.auth.initial_access_token_command"
    )


def test_the_command_does_not_inherit_the_registry_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OAUTH2_SYNC_INITIAL_ACCESS_TOKEN", "static-token")
    monkeypatch.setenv("OAUTH2_SYNC_REGISTRATION_ACCESS_TOKEN", "rat")
    monkeypatch.setenv("OTHER", "kept")
    command = (sys.executable, "-c", "import os; print('tok-' + '-'.join(os.environ.get(k, 'no') "
               "for k in ('OAUTH2_SYNC_INITIAL_ACCESS_TOKEN', "
               "'OAUTH2_SYNC_REGISTRATION_ACCESS_TOKEN', 'OTHER')))")
    token = initial_access_token(None, command, client_id="acme-probe", withheld=(
        "OAUTH2_SYNC_INITIAL_ACCESS_TOKEN", "OAUTH2_SYNC_REGISTRATION_ACCESS_TOKEN"))
    assert token is not None and token.reveal() == "tok-no-no-kept"
