"""Enforcing the access review: who must approve a plan's widening changes, and whether
they have, as a commit status (GitHub) or a job's exit code (GitLab).

``required`` reads the plan and ``review.widening_approvers``: each widening change
needs one approval from each approver team that covers a team owning its file. The
forges are asked only for what is needed: the pull request's approving reviewers and,
per required team, whether one of them is a member. Tokens come from the environment
and are never logged; the API URL must be https, or http on a loopback address, and pass
the registry's URL check (no user info, no backslash: ``transport.url_problem``).
Redirects are never followed (the token would go with them), answers are read up to
``MAX_BODY`` bytes and ``MAX_PAGES`` pages, and an approval counts only when it was
given on the commit under review (GitHub's review ``commit_id``): a widening change
pushed after an approval needs a new one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import quote

import requests
import urllib3

from oauth2_sync.errors import UsageError
from oauth2_sync.plan import Plan
from oauth2_sync.registry.transport import segment, url_problem
from oauth2_sync.settings import Settings

logger = logging.getLogger(__name__)

STATUS_CONTEXT = "oauth2-sync/access-review"
"""The commit status a branch protection rule can require."""
TIMEOUT = 30.0
MAX_PAGES = 50
"""Pages of reviews read (100 each): a server sending pages without end is refused."""
MAX_BODY = 8 * 1024 * 1024
"""Bytes of one answer read: a larger one is refused, not held in memory."""
State = Literal["pending", "success"]


@dataclass(frozen=True, slots=True)
class Requirement:
    """An approval the plan needs: from a member of ``team``, for ``clients``."""

    team: str
    clients: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The access review's state and the one line that says why."""

    state: State
    description: str
    missing: tuple[Requirement, ...] = ()


def required(plan: Plan, settings: Settings) -> list[Requirement]:
    """The approvals the plan's widening changes need under the settings, by team."""
    clients: dict[str, list[str]] = {a.team: [] for a in settings.widening_approvers}
    for change in plan.changes:
        if change.risk.risk != "widens":
            continue
        owners = [t.name for t in settings.teams_owning(change.file)] if change.file else []
        for approver in settings.widening_approvers:
            if approver.covers(owners) and change.client_id not in clients[approver.team]:
                clients[approver.team].append(change.client_id)
    return [Requirement(team, tuple(ids)) for team, ids in clients.items() if ids]


class Forge(Protocol):
    """What the review needs of GitHub or GitLab."""

    def approvers(self) -> Sequence[str]:
        """Who approves the pull (merge) request now."""
        ...

    def is_member(self, team: str, user: str) -> bool:
        """Whether ``user`` is an active member of ``team``."""
        ...


def evaluate(requirements: Sequence[Requirement], forge: Forge) -> Verdict:
    """``success`` when every requirement has an approval from a member of its team."""
    if not requirements:
        return Verdict("success", "no change widens access, or no approval is required")
    approvers = forge.approvers()
    missing = tuple(
        r for r in requirements if not any(forge.is_member(r.team, u) for u in approvers)
    )
    if not missing:
        teams = ", ".join(r.team for r in requirements)
        return Verdict("success", f"widening changes approved by {teams}")
    what = "; ".join(f"{r.team} ({', '.join(r.clients)})" for r in missing)
    return Verdict("pending", f"widening changes need an approval from {what}", missing)


def check_api_url(url: str, what: str) -> str:
    """``url`` without a trailing slash: https, or http on a loopback address only, and
    nothing parsers read differently (user info, backslashes, control characters)."""
    problem = url_problem(url)
    if problem is None and ("?" in url or "#" in url):
        problem = ("ambiguous", "it holds a query or fragment ('?' or '#')")
    if problem is None:
        return url.rstrip("/")
    kind, detail = problem
    # The URL itself is not shown: its user info may hold a password.
    why = detail if kind == "ambiguous" else "it must be https (plain http only for a loopback address)"
    raise UsageError(f"{what} is refused: {why}; check the variable")


class _Api:
    def __init__(self, base: str, headers: Mapping[str, str]) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.headers.update(headers)

    def call(self, method: str, path: str, json: object = None) -> requests.Response:
        try:
            # No redirects: requests keeps a Private-Token header on any host.
            response = self.session.request(method, self.base + path, json=json,
                                            timeout=TIMEOUT, allow_redirects=False,
                                            stream=True)
            with response:
                body = response.raw.read(MAX_BODY + 1, decode_content=True)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            # The exception may name the URL, never the token (it is in a header).
            raise UsageError(
                f"cannot reach {self.base}: {type(exc).__name__}; check the API URL"
            ) from None
        if len(body) > MAX_BODY:
            raise UsageError(f"{self.base} answered more than {MAX_BODY} bytes; check the "
                             "API URL")
        response._content = body  # read once, bounded: .json() reads it
        return response

    def ok(self, response: requests.Response, what: str) -> requests.Response:
        if 300 <= response.status_code < 400:  # never followed: the token would go along
            raise UsageError(
                f"{what}: {self.base} answered a redirect (HTTP {response.status_code}); "
                "check the API URL"
            )
        if response.status_code >= 400:  # HTTP client and server errors
            raise UsageError(
                f"{what}: {self.base} answered HTTP {response.status_code}; check the token "
                "and its permissions"
            )
        return response

    def json(self, response: requests.Response, what: str, kind: type[object]) -> object:
        """The answer's JSON document, which must be a ``kind`` (list or dict)."""
        try:
            document = self.ok(response, what).json()
        except ValueError:
            document = None
        if not isinstance(document, kind):
            raise UsageError(f"{what}: {self.base} answered no JSON {kind.__name__}; check "
                             "the API URL")
        return document


def _field(entry: object, *keys: str) -> object:
    """``entry[keys[0]][keys[1]]...``, or ``None`` where the document has no such key."""
    for key in keys:
        entry = entry.get(key) if isinstance(entry, dict) else None
    return entry


class GitHub:
    """The GitHub REST calls of the review: reviews, team memberships, a commit status."""

    def __init__(self, api_url: str, token: str, repo: str, pull: int, head: str) -> None:
        self.api = _Api(check_api_url(api_url, "GITHUB_API_URL"), {
            "Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
        })
        self.repo = "/".join(segment(part) for part in repo.split("/", 1))
        self.pull = pull
        self.head = head

    def approvers(self) -> Sequence[str]:
        """Users whose latest review of the pull request approves it at ``self.head``.

        An approval of an earlier commit does not count: what it approved may not be
        what the plan now holds. A later request for changes, or a dismissal, withdraws
        an approval; comments change nothing.
        """
        latest: dict[str, tuple[str, object]] = {}
        what = "reading the pull request's reviews"
        for page in range(1, MAX_PAGES + 1):
            reviews = self.api.json(self.api.call(
                "GET", f"/repos/{self.repo}/pulls/{self.pull}/reviews?per_page=100&page={page}"
            ), what, list)
            assert isinstance(reviews, list)
            for review in reviews:
                state, login = _field(review, "state"), _field(review, "user", "login")
                if state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED") and isinstance(
                        login, str):
                    latest[login] = (state, _field(review, "commit_id"))
            if len(reviews) < 100:  # the page size asked for
                break
        else:
            raise UsageError(f"{what}: {self.api.base} sent more than {MAX_PAGES} pages; "
                             "check the API URL")
        return sorted(user for user, (state, commit) in latest.items()
                      if state == "APPROVED" and commit == self.head)

    def is_member(self, team: str, user: str) -> bool:
        """Whether ``user`` is an active member of ``org/team-slug``."""
        org, slug = team.split("/", 1)
        response = self.api.call(
            "GET", f"/orgs/{segment(org)}/teams/{segment(slug)}/memberships/{segment(user)}"
        )
        if response.status_code == 404:  # not a member
            return False
        return _field(self.api.json(response, f"reading {team}'s members", dict),
                      "state") == "active"

    def publish(self, sha: str, verdict: Verdict, target_url: str | None = None) -> None:
        """Set the commit status ``oauth2-sync/access-review`` on ``sha``."""
        body = {"state": verdict.state, "context": STATUS_CONTEXT,
                # GitHub cuts descriptions at 140 characters.
                "description": verdict.description[:140]}
        if target_url:
            body["target_url"] = target_url
        self.api.ok(self.api.call("POST", f"/repos/{self.repo}/statuses/{segment(sha)}", body),
                    "setting the commit status")


class GitLab:
    """The GitLab REST calls of the review: merge-request approvals, group members."""

    def __init__(self, api_url: str, token: str, project: str, merge_request: int) -> None:
        self.api = _Api(check_api_url(api_url, "CI_API_V4_URL"), {"Private-Token": token})
        self.project = quote(project, safe="")
        self.merge_request = merge_request
        self._ids: dict[str, int] = {}

    def approvers(self) -> Sequence[str]:
        """Users who approve the merge request."""
        what = "reading the merge request's approvals"
        data = self.api.json(self.api.call(
            "GET", f"/projects/{self.project}/merge_requests/{self.merge_request}/approvals"
        ), what, dict)
        entries = _field(data, "approved_by")
        for entry in entries if isinstance(entries, list) else []:
            name, number = _field(entry, "user", "username"), _field(entry, "user", "id")
            if isinstance(name, str) and isinstance(number, int):
                self._ids[name] = number
        return sorted(self._ids)

    def is_member(self, team: str, user: str) -> bool:
        """Whether ``user`` is a member of the group ``team`` (inherited included)."""
        response = self.api.call(
            "GET", f"/groups/{segment(team)}/members/all/{self._ids[user]}"
        )
        if response.status_code == 404:  # not a member
            return False
        member = self.api.json(response, f"reading {team}'s members", dict)
        return _field(member, "state") in (None, "active")


def summary(requirements: Iterable[Requirement]) -> str:
    """The teams whose approval the plan needs, for logs."""
    return ", ".join(r.team for r in requirements) or "none"
