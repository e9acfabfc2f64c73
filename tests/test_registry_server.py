"""``oauth2-sync registry serve`` over real HTTP: the curl walk-through of
docs/reference/registry-api.md and the edges of every endpoint, with exact status codes,
headers and bodies."""

from __future__ import annotations

import json
import re
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from support.clock import ManualClock, clocked_server
from support.registry import CI_CREDENTIAL, RegistryServer, launch_registry_server

from oauth2_sync.refserver.server import RegistryServer as InProcessServer

INVALID_TOKEN = 'Bearer realm="oauth", error="invalid_token"'
AUDIT = ("createdAt", "updatedAt")


def unique(prefix: str = "acme") -> str:
    """A client ID no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def new_body(client_id: str, **changes: Any) -> dict[str, Any]:
    """A valid create body."""
    body: dict[str, Any] = {
        "clientId": client_id,
        "name": "Reporting service",
        "email": "data-team@acme.example",
        "partnerId": 101,
    }
    body.update(changes)
    return body


def without_audit(body: dict[str, Any]) -> dict[str, Any]:
    """The body without its timestamps (they change every run)."""
    return {k: v for k, v in body.items() if k not in AUDIT}


def test_the_curl_walkthrough(registry_server: RegistryServer) -> None:
    base = registry_server.base_url
    token = requests.post(
        registry_server.token_url, data={"grant_type": "client_credentials"},
        auth=registry_server.ci, timeout=10,
    )
    assert token.status_code == 200
    assert token.headers["Cache-Control"] == "no-store"
    grant = token.json()
    assert sorted(grant) == ["access_token", "expires_in", "scope", "token_type"]
    assert (grant["token_type"], grant["expires_in"], grant["scope"]) == (
        "Bearer", 3600, "read write",
    )
    auth = {"Authorization": f"Bearer {grant['access_token']}"}

    partners = requests.get(f"{base}/partners", headers=auth, timeout=10)
    assert partners.status_code == 200
    assert [p["subdomain"] for p in partners.json()] == ["acme", "globex", "initech", "umbrella"]
    assert partners.json()[1] == {
        "id": 102, "subdomain": "globex", "name": "Globex Inc.",
        "users": ["analytics", "etl", "partner-portal", "support-desk"],
    }

    client_id = unique()
    created = requests.post(f"{base}/oauth2-clients", json=new_body(client_id), headers=auth,
                            timeout=10)
    assert created.status_code == 201
    body = created.json()
    secret = body.pop("clientSecret")
    assert len(secret) >= 43
    version = body["version"]
    assert created.headers["ETag"] == f'"{version}"'
    assert created.headers["Location"] == f"/v1/oauth2-clients/{client_id}"
    assert without_audit(body) == {
        "clientId": client_id,
        "name": "Reporting service",
        "email": "data-team@acme.example",
        "partnerId": 101,
        "restrictToPartnerUsers": True,
        "scope": ["read"],
        "grantTypes": ["password", "refresh_token"],
        "redirectUri": "",
        "accessTokenValiditySeconds": None,
        "refreshTokenValiditySeconds": None,
        "version": version,
        "updatedBy": "oauth2-sync-ci",
    }

    url = f"{base}/oauth2-clients/{client_id}"
    read = requests.get(url, headers=auth, timeout=10)
    assert read.status_code == 200
    assert read.headers["ETag"] == f'"{version}"'
    assert read.json() == body
    assert "clientSecret" not in read.text

    stale = requests.put(url, json=new_body(client_id, name="New"),
                         headers={**auth, "If-Match": f'"{version - 1}"'}, timeout=10)
    assert stale.status_code == 412
    assert stale.json() == {
        "error": "precondition_failed",
        "message": f"client {client_id} is at version {version}, not {version - 1}",
    }

    again = requests.post(f"{base}/oauth2-clients", json=new_body(client_id), headers=auth,
                          timeout=10)
    assert again.status_code == 409
    assert again.json() == {"error": "conflict", "message": f"client {client_id} already exists"}

    read_only = registry_server.headers(registry_server.plan)
    forbidden = requests.delete(url, headers=read_only, timeout=10)
    assert forbidden.status_code == 403
    assert forbidden.headers["WWW-Authenticate"] == (
        'Bearer realm="oauth", error="insufficient_scope", scope="write"'
    )
    assert forbidden.json() == {
        "error": "insufficient_scope",
        "message": "the token's scope 'read' does not allow writes",
    }

    invalid = requests.post(
        f"{base}/oauth2-clients",
        json=new_body("globex-x", email="a@acme.example, b@acme.example",
                      redirectUri="https://a.example/cb", refreshTokenValiditySeconds=-1),
        headers=auth, timeout=10,
    )
    assert invalid.status_code == 400
    fields = {
        "clientId": "must be 'acme-' followed by a user name",
        "email": "must be exactly one e-mail address",
        "redirectUri": "redirect URIs are allowed only with the implicit or authorization_code "
                       "grant",
        "refreshTokenValiditySeconds": "must be null (platform default) or a positive number "
                                       "of seconds",
    }
    assert invalid.json() == {
        "error": "invalid_client_metadata",
        "message": "invalid client metadata: "
                   + "; ".join(f"{k}: {v}" for k, v in fields.items()),
        "fields": fields,
    }

    deleted = requests.delete(url, headers={**auth, "If-Match": f'"{version}"'}, timeout=10)
    assert deleted.status_code == 204
    assert deleted.content == b""
    gone = requests.get(url, headers=auth, timeout=10)
    assert gone.status_code == 404
    assert gone.json() == {"error": "not_found", "message": f"client {client_id} does not exist"}


def test_replace_and_rotate(registry_server: RegistryServer) -> None:
    auth = registry_server.headers()
    client_id = unique()
    url = f"{registry_server.base_url}/oauth2-clients/{client_id}"
    created = requests.post(f"{registry_server.base_url}/oauth2-clients",
                            json=new_body(client_id), headers=auth, timeout=10).json()
    replaced = requests.put(
        url,
        json={"name": "Portal", "email": "p@acme.example", "partnerId": 101,
              "grantTypes": ["authorization_code"], "redirectUri": "https://b/cb, https://a/cb"},
        headers={**auth, "If-Match": f'"{created["version"]}"'}, timeout=10,
    )
    assert replaced.status_code == 200
    body = replaced.json()
    assert replaced.headers["ETag"] == f'"{body["version"]}"'
    assert body["version"] > created["version"]
    assert body["createdAt"] == created["createdAt"]
    assert (body["name"], body["scope"], body["redirectUri"]) == (
        "Portal", ["read"], "https://b/cb, https://a/cb",
    )
    # "*" matches any existing client; weak tags never match (If-Match compares strongly).
    assert requests.put(url, json=new_body(client_id), headers={**auth, "If-Match": "*"},
                        timeout=10).status_code == 200
    weak = requests.put(url, json=new_body(client_id),
                        headers={**auth, "If-Match": 'W/"1"'}, timeout=10)
    assert weak.status_code == 412
    rotated = requests.post(f"{url}/secret", headers=auth, timeout=10)
    assert rotated.status_code == 200
    assert rotated.headers["Cache-Control"] == "no-store"
    assert rotated.json()["clientSecret"] != created["clientSecret"]
    assert rotated.headers["ETag"] == f'"{rotated.json()["version"]}"'
    missing = requests.post(f"{url}-nobody/secret", headers=auth, timeout=10)
    assert missing.status_code == 404


def test_paging(registry_server: RegistryServer) -> None:
    auth = registry_server.headers()
    base = f"{registry_server.base_url}/oauth2-clients"
    for _ in range(3):
        requests.post(base, json=new_body(unique()), headers=auth, timeout=10)
    everything = requests.get(base, headers=auth, timeout=10).json()
    assert isinstance(everything, list)
    total = len(everything)
    first = requests.get(base, params={"page": 0, "pageSize": 2}, headers=auth, timeout=10).json()
    assert (first["total"], first["page"], first["pageSize"]) == (total, 0, 2)
    assert first["list"] == everything[:2]
    default = requests.get(base, params={"page": 0}, headers=auth, timeout=10).json()
    assert (default["pageSize"], default["list"]) == (500, everything)
    past = requests.get(base, params={"page": 10_000, "pageSize": 2}, headers=auth,
                        timeout=10).json()
    assert past == {"total": total, "page": 10_000, "pageSize": 2, "list": []}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": "-1"}, "page"),
        ({"page": "x"}, "page"),
        ({"page": "0", "pageSize": "0"}, "pageSize"),
        ({"page": "0", "pageSize": "5001"}, "pageSize"),
    ],
)
def test_bad_paging(registry_server: RegistryServer, params: dict[str, str], field: str) -> None:
    response = requests.get(f"{registry_server.base_url}/oauth2-clients", params=params,
                            headers=registry_server.headers(), timeout=10)
    assert response.status_code == 400
    limits = "0 to 2147483647" if field == "page" else "1 to 5000"
    assert response.json() == {
        "error": "invalid_request",
        "message": f"{field} must be an integer from {limits}",
        "fields": {field: f"must be an integer from {limits}"},
    }


@pytest.mark.parametrize(
    ("headers", "challenge", "body"),
    [
        ({}, 'Bearer realm="oauth"',
         {"error": "unauthorized", "message": "a bearer token is required"}),
        ({"Authorization": "Bearer made-up"}, INVALID_TOKEN,
         {"error": "invalid_token", "message": "the access token is unknown or expired"}),
        ({"Authorization": "Basic b2F1dGgyOng="}, 'Bearer realm="oauth"',
         {"error": "unauthorized", "message": "a bearer token is required"}),
    ],
)
def test_unauthenticated(
    registry_server: RegistryServer,
    headers: dict[str, str],
    challenge: str,
    body: dict[str, str],
) -> None:
    response = requests.get(f"{registry_server.base_url}/partners", headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == challenge
    assert response.json() == body


def test_routing_errors(registry_server: RegistryServer) -> None:
    base = registry_server.base_url
    unknown = requests.get(f"{base}/nothing", timeout=10)
    assert (unknown.status_code, unknown.json()) == (
        404, {"error": "not_found", "message": "no such endpoint: /v1/nothing"},
    )
    wrong = requests.patch(f"{base}/oauth2-clients/acme-x", timeout=10)
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "DELETE, GET, PUT"
    assert wrong.json() == {
        "error": "method_not_allowed",
        "message": "PATCH is not allowed here (allowed: DELETE, GET, PUT)",
    }
    head = requests.head(f"{base}/partners", timeout=10)
    assert (head.status_code, head.headers["Allow"], head.content) == (405, "GET", b"")


def test_malformed_bodies(registry_server: RegistryServer) -> None:
    auth = registry_server.headers()
    base = f"{registry_server.base_url}/oauth2-clients"
    cases = [
        (b"{not json", {"error": "invalid_request", "message": "the body is not valid JSON"}),
        (b"\xff\xfe", {"error": "invalid_request", "message": "the body is not UTF-8"}),
        (b'{"a": NaN}', {"error": "invalid_request", "message": "the body is not valid JSON"}),
        (b"[1]", {"error": "invalid_client_metadata",
                  "message": "invalid client metadata: the body must be a JSON object"}),
    ]
    for raw, expected in cases:
        response = requests.post(base, data=raw, headers={**auth, "Content-Type": "application/json"},
                                 timeout=10)
        assert (response.status_code, response.json()) == (400, expected)
    huge = requests.post(base, data=b" " * (1024 * 1024 + 1), headers=auth, timeout=10)
    assert huge.status_code == 413
    assert huge.json() == {
        "error": "payload_too_large", "message": "the body must be at most 1048576 bytes",
    }


def test_chunked_bodies_are_read(registry_server: RegistryServer) -> None:
    client_id = unique()
    payload = json.dumps(new_body(client_id)).encode()
    response = requests.post(
        f"{registry_server.base_url}/oauth2-clients",
        data=iter([payload[:10], payload[10:]]),
        headers={**registry_server.headers(), "Content-Type": "application/json"}, timeout=10,
    )
    assert response.status_code == 201
    assert response.json()["clientId"] == client_id


def test_token_endpoint_errors(registry_server: RegistryServer) -> None:
    url = registry_server.token_url

    def post(data: dict[str, str], auth: tuple[str, str] | None = None) -> requests.Response:
        return requests.post(url, data=data, auth=auth, timeout=10)

    wrong = post({"grant_type": "client_credentials"}, ("oauth2-sync-ci", "wrong"))
    assert (wrong.status_code, wrong.headers["WWW-Authenticate"], wrong.json()) == (
        401, 'Basic realm="oauth"',
        {"error": "invalid_client", "message": "client authentication failed"},
    )
    anonymous = post({"grant_type": "client_credentials"})
    assert anonymous.json() == {
        "error": "invalid_client", "message": "HTTP Basic client authentication is required",
    }
    ci = registry_server.ci
    for data, error, message in [
        ({}, "invalid_request", "grant_type is required"),
        ({"grant_type": "implicit"}, "unsupported_grant_type",
         "grant_type 'implicit' is not supported"),
        ({"grant_type": "password", "username": "ops"}, "invalid_request",
         "username and password are required"),
        ({"grant_type": "password", "username": "ops", "password": "x"}, "invalid_grant",
         "wrong user name or password"),
        ({"grant_type": "refresh_token", "refresh_token": "x"}, "invalid_grant",
         "the refresh token is unknown, expired or used"),
        ({"grant_type": "client_credentials", "scope": "admin"}, "invalid_scope",
         "scope may only name: read write"),
    ]:
        response = post(data, ci)
        assert (response.status_code, response.json()) == (
            400, {"error": error, "message": message},
        )
    twice = requests.post(url, data="grant_type=client_credentials&grant_type=password",
                          auth=ci, timeout=10,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert twice.json() == {
        "error": "invalid_request", "message": "parameter 'grant_type' is given more than once",
    }
    narrowed = post({"grant_type": "client_credentials", "scope": "read"}, ci)
    assert narrowed.json()["scope"] == "read"


def test_password_and_refresh_grants(registry_server: RegistryServer) -> None:
    url = registry_server.token_url
    username, password = registry_server.user
    first = requests.post(
        url, data={"grant_type": "password", "username": username, "password": password},
        auth=registry_server.ci, timeout=10,
    ).json()
    assert sorted(first) == ["access_token", "expires_in", "refresh_token", "scope", "token_type"]
    # The read-only credential narrows the user's scope.
    narrow = requests.post(
        url, data={"grant_type": "password", "username": username, "password": password},
        auth=registry_server.plan, timeout=10,
    ).json()
    assert narrow["scope"] == "read"
    refreshed = requests.post(
        url, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=registry_server.ci, timeout=10,
    )
    assert refreshed.status_code == 200
    assert refreshed.json()["refresh_token"] != first["refresh_token"]
    reused = requests.post(
        url, data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=registry_server.ci, timeout=10,
    )
    assert reused.status_code == 400
    partners = requests.get(
        f"{registry_server.base_url}/partners",
        headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"}, timeout=10,
    )
    assert partners.status_code == 200


def test_concurrent_requests(registry_server: RegistryServer) -> None:
    auth = registry_server.headers()
    base = f"{registry_server.base_url}/oauth2-clients"
    ids = [unique() for _ in range(40)]

    def create(client_id: str) -> int:
        return requests.post(base, json=new_body(client_id), headers=auth, timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(create, ids))
    assert statuses == [201] * 40
    listed = {c["clientId"] for c in requests.get(base, headers=auth, timeout=10).json()}
    assert set(ids) <= listed


@pytest.fixture
def clocked(tmp_path: Path) -> Iterator[tuple[InProcessServer, ManualClock]]:
    """An in-process server (port 0, the example seed, 1 s tokens) on a manual clock."""
    with clocked_server(tmp_path) as running:
        yield running


def test_expired_tokens_get_401(clocked: tuple[InProcessServer, ManualClock]) -> None:
    server, clock = clocked
    token = requests.post(
        server.url[: -len("/v1")] + "/oauth/token", data={"grant_type": "client_credentials"},
        auth=CI_CREDENTIAL, timeout=10,
    ).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{server.url}/partners", headers=auth, timeout=10).status_code == 200
    clock.advance(1.001)
    expired = requests.get(f"{server.url}/partners", headers=auth, timeout=10)
    assert expired.status_code == 401
    assert expired.headers["WWW-Authenticate"] == INVALID_TOKEN


def test_rate_limit(start_registry_server: Callable[..., RegistryServer]) -> None:
    server = start_registry_server(rate_limit=1)
    auth = server.headers()
    with requests.Session() as session:
        statuses = [
            session.get(f"{server.base_url}/partners", headers=auth, timeout=10)
            for _ in range(3)
        ]
    assert statuses[0].status_code == 200
    limited = statuses[-1]
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert limited.json() == {"error": "rate_limited", "message": "too many requests; retry after 1 s"}
    # Another credential has a bucket of its own.
    other = requests.get(f"{server.base_url}/partners", headers=server.headers(server.plan),
                         timeout=10)
    assert other.status_code == 200


def test_seed_secrets_from_the_environment(
    start_registry_server: Callable[..., RegistryServer],
) -> None:
    server = start_registry_server(extra_env={"OAUTH2_SYNC_CI_SECRET": "from-the-environment"})
    url = server.token_url
    data = {"grant_type": "client_credentials"}
    assert requests.post(url, data=data, auth=server.ci, timeout=10).status_code == 401
    from_env = ("oauth2-sync-ci", "from-the-environment")
    assert requests.post(url, data=data, auth=from_env, timeout=10).status_code == 200


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_clean_shutdown(
    start_registry_server: Callable[..., RegistryServer], signum: signal.Signals
) -> None:
    server = start_registry_server()
    with requests.Session() as session:  # an idle keep-alive connection must not block
        assert session.get(f"{server.base_url}/partners", headers=server.headers(),
                           timeout=10).status_code == 200
        server.process.send_signal(signum)
        assert server.process.wait(timeout=15) == 0
    assert "Traceback" not in "".join(server.stderr)


def ended(server: RegistryServer) -> str:
    """Stop ``server`` and return all it wrote to stderr, once its pipe is read to the end."""
    assert server.stop() == 0
    assert server.process.stderr is not None
    deadline = time.monotonic() + 10
    while not server.process.stderr.closed:  # closed by the reader thread at EOF
        assert time.monotonic() < deadline, "the server's stderr was not read to its end"
        time.sleep(0.02)
    return "".join(server.stderr)


def test_one_access_line_per_request_without_secrets(
    start_registry_server: Callable[..., RegistryServer],
) -> None:
    server = start_registry_server()
    token = server.token()
    auth = {"Authorization": f"Bearer {token}"}
    client_id = unique()
    created = requests.post(f"{server.base_url}/oauth2-clients", json=new_body(client_id),
                            headers=auth, timeout=10)
    secret = created.json()["clientSecret"]
    listed = requests.get(f"{server.base_url}/oauth2-clients",
                          params={"pageSize": "7", "access_token": token}, headers=auth,
                          timeout=10)
    assert (created.status_code, listed.status_code) == (201, 200)
    missing = requests.get(f"{server.base_url}/oauth2-clients/nope%0Aforged", headers=auth,
                           timeout=10)
    assert missing.status_code == 404
    stderr = ended(server)
    access = re.findall(r"^INFO oauth2_sync\.refserver\.access: (.*) \d+\.\d ms$", stderr, re.M)
    assert access == [
        "POST /oauth/token 200",
        "POST /v1/oauth2-clients 201",
        "GET /v1/oauth2-clients 200",  # never the query, where a token could be
        "GET /v1/oauth2-clients/nope%0Aforged 404",
    ]
    for value in (token, secret, server.ci[1], "pageSize", "access_token"):
        assert value not in stderr


def test_quiet_server_logs_no_access_lines(
    start_registry_server: Callable[..., RegistryServer],
) -> None:
    server = start_registry_server(options=["-q"])
    assert requests.get(f"{server.base_url}/partners", headers=server.headers(),
                        timeout=10).status_code == 200
    stderr = ended(server)
    assert stderr.startswith("registry listening on http://127.0.0.1:")
    assert stderr.count("\n") == 1


def test_the_store_survives_a_restart(
    start_registry_server: Callable[..., RegistryServer],
) -> None:
    server = start_registry_server()
    client_id = unique()
    requests.post(f"{server.base_url}/oauth2-clients", json=new_body(client_id),
                  headers=server.headers(), timeout=10)
    assert server.stop() == 0
    again = launch_registry_server(server.db.parent)
    try:
        got = requests.get(f"{again.base_url}/oauth2-clients/{client_id}",
                           headers=again.headers(), timeout=10)
        assert got.status_code == 200
    finally:
        again.stop()


def test_bad_seed_file(
    start_registry_server: Callable[..., RegistryServer], tmp_path: Path
) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text("partners: {}\n")
    with pytest.raises(RuntimeError) as info:
        start_registry_server(seed=seed)
    assert f"Error: {seed}: partners: must be a list" in str(info.value)
