"""Enforcing the access review: who must approve a plan's widening changes, and whether
they have, as a commit status (GitHub) or a job's exit code (GitLab).

``required`` reads the plan and ``review.widening_approvers``: each widening change
needs one approval from each approver team that covers a team owning its file. The
forges are asked only for what is needed: the pull request's approving reviewers and,
per required team, whether one of them is a member. Tokens come from the environment
and are never logged; the API URL must be https, or http on a loopback address.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import quote, urlsplit

import requests

from oauth2_sync.errors import UsageError
from oauth2_sync.plan import Plan
from oauth2_sync.settings import Settings
from oauth2_sync.urls import is_loopback

logger = logging.getLogger(__name__)

STATUS_CONTEXT = "oauth2-sync/access-review"
"""The commit status a branch protection rule can require."""
TIMEOUT = 30.0
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
    """``url`` without a trailing slash: https, or http on a loopback address only."""
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname)):
        return url.rstrip("/")
    raise UsageError(
        f"{what} {url!r} must be https (plain http only for a loopback address); check the "
        "variable"
    )


class _Api:
    def __init__(self, base: str, headers: Mapping[str, str]) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.headers.update(headers)

    def call(self, method: str, path: str, json: object = None) -> requests.Response:
        try:
            return self.session.request(method, self.base + path, json=json, timeout=TIMEOUT)
        except requests.RequestException as exc:
            # The exception may name the URL, never the token (it is in a header).
            raise UsageError(
                f"cannot reach {self.base}: {type(exc).__name__}; check the API URL"
            ) from exc

    def ok(self, response: requests.Response, what: str) -> requests.Response:
        if response.status_code >= 400:  # HTTP client and server errors
            raise UsageError(
                f"{what}: {self.base} answered HTTP {response.status_code}; check the token "
                "and its permissions"
            )
        return response


class GitHub:
    """The GitHub REST calls of the review: reviews, team memberships, a commit status."""

    def __init__(self, api_url: str, token: str, repo: str, pull: int) -> None:
        self.api = _Api(check_api_url(api_url, "GITHUB_API_URL"), {
            "Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
        })
        self.repo = repo
        self.pull = pull

    def approvers(self) -> Sequence[str]:
        """Users whose latest review of the pull request approves it."""
        latest: dict[str, str] = {}
        page = 1
        while True:
            reviews = self.api.ok(self.api.call(
                "GET", f"/repos/{self.repo}/pulls/{self.pull}/reviews?per_page=100&page={page}"
            ), "reading the pull request's reviews").json()
            for review in reviews:
                if review.get("state") in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
                    latest[review["user"]["login"]] = review["state"]
            if len(reviews) < 100:  # the page size asked for
                break
            page += 1
        return sorted(user for user, state in latest.items() if state == "APPROVED")

    def is_member(self, team: str, user: str) -> bool:
        """Whether ``user`` is an active member of ``org/team-slug``."""
        org, slug = team.split("/", 1)
        response = self.api.call(
            "GET", f"/orgs/{quote(org)}/teams/{quote(slug)}/memberships/{quote(user)}"
        )
        if response.status_code == 404:  # not a member
            return False
        return bool(self.api.ok(response, f"reading {team}'s members").json().get(
            "state") == "active")

    def publish(self, sha: str, verdict: Verdict, target_url: str | None = None) -> None:
        """Set the commit status ``oauth2-sync/access-review`` on ``sha``."""
        body = {"state": verdict.state, "context": STATUS_CONTEXT,
                # GitHub cuts descriptions at 140 characters.
                "description": verdict.description[:140]}
        if target_url:
            body["target_url"] = target_url
        self.api.ok(self.api.call("POST", f"/repos/{self.repo}/statuses/{sha}", body),
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
        data = self.api.ok(self.api.call(
            "GET", f"/projects/{self.project}/merge_requests/{self.merge_request}/approvals"
        ), "reading the merge request's approvals").json()
        for entry in data.get("approved_by", []):
            self._ids[entry["user"]["username"]] = int(entry["user"]["id"])
        return sorted(self._ids)

    def is_member(self, team: str, user: str) -> bool:
        """Whether ``user`` is a member of the group ``team`` (inherited included)."""
        response = self.api.call(
            "GET", f"/groups/{quote(team, safe='')}/members/all/{self._ids[user]}"
        )
        if response.status_code == 404:  # not a member
            return False
        return bool(self.api.ok(response, f"reading {team}'s members").json().get("state",
                                                                                    "active")
                    == "active")


def summary(requirements: Iterable[Requirement]) -> str:
    """The teams whose approval the plan needs, for logs."""
    return ", ".join(r.team for r in requirements) or "none"
