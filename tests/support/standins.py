"""Loopback stand-ins of the HTTP APIs the CI kit talks to: Vault's KV v2, the GitLab
notes, merge-request and approval calls, and GitHub's review calls. Real servers on 127.0.0.1, nothing mocked.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from support.kit import PLAN_MARKER, TIMEOUT

Handler = Callable[[str, str, Mapping[str, str], bytes], tuple[int, dict[str, str], bytes]]


class _StandInHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        handle: Handler = self.server.handle  # type: ignore[attr-defined]
        status, headers, payload = handle(self.command, self.path, dict(self.headers), body)
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        try:
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # a client killed while it waited (a cancelled job)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def stand_in(handle: Handler) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 answering with ``handle``; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StandInHandler)
    server.handle = handle  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Vault:
    """Vault's KV v2 write and read (``POST``/``GET /v1/secret/data/PATH``), nothing else.

    With ``hold_after`` set, writes beyond that many secrets hang (``held`` is set) until
    ``release``: a store that is slow just when a job is cancelled.
    """

    token = "vault-token-for-tests"

    def __init__(self) -> None:
        self.data: dict[str, dict[str, str]] = {}
        self.refuse = False
        self.hold_after: int | None = None
        self.held = threading.Event()
        self.release = threading.Event()

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if headers.get("X-Vault-Token") != self.token or self.refuse:
            return 403, {}, b'{"errors": ["permission denied"]}'
        match = re.fullmatch(r"/v1/secret/data/(.+)", path)
        if method == "GET" and match and match.group(1) in self.data:
            return 200, {}, json.dumps({"data": {"data": self.data[match.group(1)]}}).encode()
        if method != "POST" or not match:
            return 404, {}, b'{"errors": []}'
        if self.hold_after is not None and len(self.data) >= self.hold_after:
            self.held.set()
            self.release.wait(TIMEOUT)
            return 503, {}, b'{"errors": ["sealed"]}'
        self.data[match.group(1)] = json.loads(body)["data"]
        return 200, {}, b'{"data": {"version": 1}}'

    @property
    def secrets(self) -> set[str]:
        return {entry["client_secret"] for entry in self.data.values()}


class GitLabNotes:
    """The notes of merge request !7 of project 42, two to a page whatever is asked."""

    token = "gitlab-token-for-tests"
    base = "/api/v4/projects/42/merge_requests/7/notes"

    def __init__(self) -> None:
        self.notes: list[dict[str, Any]] = [
            {"id": 1, "body": "added 1 commit", "system": True},
            {"id": 2, "body": "Looks good to me", "system": False},
            {"id": 3, "body": "> " + PLAN_MARKER + " quoted by a person", "system": False},
        ]

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if headers.get("Private-Token") != self.token:
            return 401, {}, b'{"message": "401 Unauthorized"}'
        parts = urlsplit(path)
        if method == "GET" and parts.path == self.base:
            page = int(parse_qs(parts.query).get("page", ["1"])[0])
            chunk = self.notes[(page - 1) * 2 : page * 2]
            more = len(self.notes) > page * 2
            return 200, {"X-Next-Page": str(page + 1) if more else ""}, json.dumps(chunk).encode()
        if method == "POST" and parts.path == self.base:
            note = {"id": max(n["id"] for n in self.notes) + 1, "system": False,
                    "body": json.loads(body)["body"]}
            self.notes.append(note)
            return 201, {}, json.dumps(note).encode()
        match = re.fullmatch(re.escape(self.base) + r"/(\d+)", parts.path)
        if method == "PUT" and match:
            note = next(n for n in self.notes if n["id"] == int(match.group(1)))
            note["body"] = json.loads(body)["body"]
            return 200, {}, json.dumps(note).encode()
        return 404, {}, b'{"message": "404 Not found"}'

    def plan_notes(self) -> list[str]:
        return [n["body"] for n in self.notes if str(n["body"]).startswith(PLAN_MARKER)]




class GitLabMergeRequests:
    """The merge requests of commit ``sha`` in project 42 (and nothing else)."""

    token = GitLabNotes.token

    def __init__(self, sha: str) -> None:
        self.sha = sha
        self.labels: list[str] = []

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if headers.get("Private-Token") != self.token:
            return 401, {}, b'{"message": "401 Unauthorized"}'
        wanted = f"/api/v4/projects/42/repository/commits/{self.sha}/merge_requests"
        if method == "GET" and path == wanted:
            merged = {"iid": 9, "state": "merged", "labels": self.labels}
            return 200, {}, json.dumps([merged]).encode()
        return 404, {}, b'{"message": "404 Not found"}'


class GitLabApprovals:
    """The GitLab calls of ``review-status --forge gitlab``: the approvals of merge request
    !7 of project 42, and group memberships (inherited ones included, ``members/all``)."""

    token = GitLabNotes.token

    def __init__(self) -> None:
        self.approved_by: list[dict[str, Any]] = []
        self.groups: dict[str, set[int]] = {"example-org/security": {31}}
        self.calls: list[str] = []

    def approve(self, username: str, user_id: int) -> None:
        self.approved_by.append({"user": {"username": username, "id": user_id}})

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if headers.get("Private-Token") != self.token:
            return 401, {}, b'{"message": "401 Unauthorized"}'
        self.calls.append(f"{method} {path}")
        if method == "GET" and path == "/api/v4/projects/42/merge_requests/7/approvals":
            return 200, {}, json.dumps({"approved_by": self.approved_by}).encode()
        # The group's full path comes URL-encoded, as one path segment.
        member = re.fullmatch(r"/api/v4/groups/([^/]+)/members/all/(\d+)", path)
        if method == "GET" and member:
            group = unquote(member.group(1))
            if int(member.group(2)) in self.groups.get(group, set()):
                return 200, {}, json.dumps({"id": int(member.group(2)), "state": "active"}).encode()
        return 404, {}, b'{"message": "404 Not found"}'


class GitHubReviews:
    """The GitHub calls of ``review-status``: a pull request's reviews, team memberships,
    commit statuses, for repository example-org/oauth2-clients."""

    token = "github-token-for-tests"
    repo = "/repos/example-org/oauth2-clients"

    def __init__(self, pull: int = 5, head: str = "ab" * 20) -> None:
        self.pull = pull
        self.head = head
        self.reviews: list[Any] = []  # any JSON: a hostile server sends odd entries
        self.teams: dict[str, set[str]] = {"example-org/security": {"sec-alice"}}
        self.statuses: list[dict[str, Any]] = []

    def approve(self, login: str, state: str = "APPROVED", commit: str | None = None) -> None:
        """A review by ``login`` of ``commit`` (default: the head commit)."""
        self.reviews.append({"user": {"login": login}, "state": state,
                             "commit_id": commit or self.head})

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {}, b'{"message": "Bad credentials"}'
        parts = urlsplit(path)
        if method == "GET" and parts.path == f"{self.repo}/pulls/{self.pull}/reviews":
            query = parse_qs(parts.query)
            page, size = int(query.get("page", ["1"])[0]), int(query.get("per_page", ["30"])[0])
            chunk = self.reviews[(page - 1) * size : page * size]
            return 200, {}, json.dumps(chunk).encode()
        member = re.fullmatch(r"/orgs/([^/]+)/teams/([^/]+)/memberships/([^/]+)", parts.path)
        if method == "GET" and member:
            org, slug, login = member.groups()
            if login in self.teams.get(f"{org}/{slug}", set()):
                return 200, {}, b'{"state": "active", "role": "member"}'
            return 404, {}, b'{"message": "Not Found"}'
        status = re.fullmatch(re.escape(self.repo) + r"/statuses/([0-9a-f]{40})", parts.path)
        if method == "POST" and status:
            self.statuses.append({"sha": status.group(1), **json.loads(body)})
            return 201, {}, body
        return 404, {}, b'{"message": "Not Found"}'

    def latest(self) -> tuple[str, str]:
        """The state and description of the last status set."""
        last = self.statuses[-1]
        assert last["context"] == "oauth2-sync/access-review"
        return last["state"], last["description"]
