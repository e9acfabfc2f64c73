"""``review-status`` and ``oauth2_sync.review``: which approvals a plan's widening
changes need, asked of a GitHub stand-in over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from support.configrepo import client, write_repo
from support.standins import GitHubReviews, stand_in

from oauth2_sync.diff import diff_clients
from oauth2_sync.errors import UsageError
from oauth2_sync.plan import Change, Plan, save
from oauth2_sync.review import Requirement, check_api_url, required
from oauth2_sync.settings import load_settings

SHA = "ab" * 20
PORTAL = client("acme-portal", grant_types=("authorization_code",),
                redirect_uris=("https://portal.acme.example/cb",))
ETL = client("globex-etl")
APPROVERS = {"review": {"widening_approvers": [
    {"team": "example-org/security"},
    {"team": "example-org/analytics-leads", "for_teams": ["analytics"]},
]}}


def update(before: object, file: str, **after: object) -> Change:
    assert isinstance(before, type(PORTAL))
    new = replace(before, **after)  # type: ignore[arg-type]
    return Change("update", before.client_id, before=before, after=new,
                  fields=diff_clients(before, new), version="1", file=file, line=2)


def plan_of(root: Path, *changes: Change) -> Path:
    plan = Plan(registry="local:x", changes=changes, no_op=0, unmanaged=0, managed=2,
                versions=(), created_at="2024-05-01T12:00:00Z")
    path = root / "plan.json"
    save(plan, path)
    return path


WIDENING = update(PORTAL, "clients/acme/clients.yaml",
                  redirect_uris=(*PORTAL.redirect_uris, "https://evil.example/cb"))
NEUTRAL = update(PORTAL, "clients/acme/clients.yaml", name="Renamed")
NARROWING = update(ETL, "clients/globex/clients.yaml", scopes=())


def run(root: Path, url: str, plan: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "OAUTH2_SYNC_"))}
    env.update(GITHUB_API_URL=url, GITHUB_TOKEN=GitHubReviews.token,
               GITHUB_REPOSITORY="example-org/oauth2-clients")
    return subprocess.run(
        [sys.executable, "-m", "oauth2_sync", "review-status", "--plan", str(plan),
         "--pull", "5", "--sha", SHA],
        cwd=root, env=env, capture_output=True, text=True, timeout=60, check=False,
    )


def test_which_team_must_approve_which_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # file names in a plan are relative to where it was made
    settings = load_settings(write_repo(tmp_path, [PORTAL, ETL], extra=APPROVERS))
    globex = update(ETL, "clients/globex/clients.yaml", scopes=("read", "write"))
    plan = Plan(registry="x", changes=(WIDENING, globex, NEUTRAL), no_op=0, unmanaged=0,
                managed=2, versions=())
    assert required(plan, settings) == [
        Requirement("example-org/security", ("acme-portal", "globex-etl")),
        Requirement("example-org/analytics-leads", ("globex-etl",)),
    ]
    unset = load_settings(write_repo(tmp_path, [PORTAL, ETL]))
    assert required(plan, unset) == []


def test_a_widening_change_is_pending_until_the_team_approves(tmp_path: Path) -> None:
    write_repo(tmp_path, [PORTAL, ETL], extra=APPROVERS)
    github = GitHubReviews()
    plan = plan_of(tmp_path, WIDENING)
    with stand_in(github.handle) as url:
        first = run(tmp_path, url, plan)
        assert (first.returncode, first.stderr) == (0, "")
        assert first.stdout == (
            "access review: pending: widening changes need an approval from "
            "example-org/security (acme-portal)\n"
        )
        assert github.latest() == ("pending", first.stdout.split(": ", 2)[2].strip())
        github.approve("bob")  # not in the team: still pending
        assert run(tmp_path, url, plan).stdout.startswith("access review: pending:")
        github.approve("sec-alice")
        done = run(tmp_path, url, plan)
    assert done.stdout == (
        "access review: success: widening changes approved by example-org/security\n"
    )
    assert github.latest() == ("success", "widening changes approved by example-org/security")
    assert [s["sha"] for s in github.statuses] == [SHA] * 3
    assert GitHubReviews.token not in first.stdout + first.stderr + done.stdout + done.stderr


def test_a_later_request_for_changes_withdraws_an_approval(tmp_path: Path) -> None:
    write_repo(tmp_path, [PORTAL, ETL], extra=APPROVERS)
    github = GitHubReviews()
    github.approve("sec-alice")
    github.approve("sec-alice", "CHANGES_REQUESTED")
    with stand_in(github.handle) as url:
        result = run(tmp_path, url, plan_of(tmp_path, WIDENING))
    assert result.stdout.startswith("access review: pending:")


def test_neutral_and_narrowing_changes_are_green_at_once(tmp_path: Path) -> None:
    write_repo(tmp_path, [PORTAL, ETL], extra=APPROVERS)
    github = GitHubReviews()
    with stand_in(github.handle) as url:
        result = run(tmp_path, url, plan_of(tmp_path, NEUTRAL, NARROWING))
    assert result.stdout == (
        "access review: success: no change widens access, or no approval is required\n"
    )
    assert github.latest()[0] == "success"


def test_a_bad_token_is_one_line_without_the_token(tmp_path: Path) -> None:
    write_repo(tmp_path, [PORTAL, ETL], extra=APPROVERS)
    github = GitHubReviews()
    github.token = "another"
    with stand_in(github.handle) as url:
        result = run(tmp_path, url, plan_of(tmp_path, WIDENING))
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: reading the pull request's reviews: {url} answered HTTP 401; check the "
        "token and its permissions\n"
    )


def test_the_api_url_must_be_https_or_loopback() -> None:
    assert check_api_url("http://127.0.0.1:9/", "X") == "http://127.0.0.1:9"
    assert check_api_url("https://api.github.com", "X") == "https://api.github.com"
    with pytest.raises(UsageError, match="must be https"):
        check_api_url("http://github.example", "GITHUB_API_URL")


def test_the_plan_document_carries_what_the_review_reads(tmp_path: Path) -> None:
    document = json.loads(plan_of(tmp_path, WIDENING).read_text())
    assert document["format_version"] == 3
    assert document["changes"][0]["risk"] == "widens"
