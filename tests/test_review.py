"""``review-status`` and ``oauth2_sync.review``: which approvals a plan's widening
changes need, asked of a GitHub stand-in over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from support.configrepo import client, write_repo
from support.standins import GitHubReviews, stand_in

from oauth2_sync.diff import diff_clients
from oauth2_sync.errors import UsageError
from oauth2_sync.plan import Change, Plan
from oauth2_sync.plandoc import save
from oauth2_sync.review import Requirement, check_api_url, required
from oauth2_sync.settings import load_settings

SHA = "ab" * 20
Answer = tuple[int, dict[str, str], bytes]
PORTAL = client("acme-portal", grant_types=("authorization_code",),
                redirect_uris=("https://portal.acme.example/cb",))
ETL = client("globex-etl")
APPROVERS = {"review": {"widening_approvers": [
    {"team": "example-org/security"},
    {"team": "example-org/analytics-leads", "for_teams": ["analytics"]},
]}}


def update(before: object, file: str, **after: object) -> Change:
    assert isinstance(before, type(PORTAL))
    new = before._replace(**after)  # type: ignore[arg-type]
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


# --- hostile answers, URLs and events (attack review) ------------------------------------


def run_env(root: Path, plan: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``review-status`` with exactly ``env`` among the GITHUB_, CI_ and OAUTH2_SYNC_ variables."""
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("GITHUB_", "OAUTH2_SYNC_", "CI_"))}
    return subprocess.run(
        [sys.executable, "-m", "oauth2_sync", "review-status", "--plan", str(plan), *args],
        cwd=root, env=base | env, capture_output=True, text=True, timeout=60, check=False,
    )


def test_an_approval_on_the_second_page_of_reviews_counts(tmp_path: Path) -> None:
    write_repo(tmp_path, [PORTAL, ETL], extra=APPROVERS)
    github = GitHubReviews()
    for n in range(100):
        github.approve(f"bystander-{n}", "COMMENTED")
    github.approve("sec-alice")
    with stand_in(github.handle) as url:
        result = run(tmp_path, url, plan_of(tmp_path, WIDENING))
    assert result.stdout == (
        "access review: success: widening changes approved by example-org/security\n"
    )


def test_a_server_sending_pages_without_end_is_stopped(tmp_path: Path) -> None:
    write_repo(tmp_path, [PORTAL, ETL], extra=APPROVERS)
    github = GitHubReviews()
    pages: list[str] = []

    def endless(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        if "/reviews" in path:
            pages.append(path)
            return 200, {}, json.dumps([{"user": {"login": "x"}, "state": "COMMENTED"}] * 100
                                       ).encode()
        return github.handle(method, path, headers, body)

    with stand_in(endless) as url:
        result = run(tmp_path, url, plan_of(tmp_path, WIDENING))
    assert (result.returncode, result.stdout, len(pages)) == (1, "", 50)
    assert result.stderr == (
        f"Error: reading the pull request's reviews: {url} sent more than 50 pages; check "
        "the API URL\n"
    )


def test_an_approval_of_an_earlier_commit_does_not_count(tmp_path: Path) -> None:
    write_repo(tmp_path, [PORTAL, ETL], extra=APPROVERS)
    github = GitHubReviews()
    github.approve("sec-alice", commit="cd" * 20)  # approved before the widening push
    with stand_in(github.handle) as url:
        held = run(tmp_path, url, plan_of(tmp_path, WIDENING))
        github.approve("sec-alice")  # approved again, on the head commit
        done = run(tmp_path, url, plan_of(tmp_path, WIDENING))
    assert held.stdout.startswith("access review: pending:")
    assert done.stdout.startswith("access review: success:")


@pytest.mark.parametrize("forge", ["github", "gitlab"])
def test_a_redirect_is_not_followed_with_the_token(tmp_path: Path, forge: str) -> None:
    write_repo(tmp_path, [PORTAL, ETL], extra=APPROVERS)
    seen: list[Mapping[str, str]] = []

    def elsewhere(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        seen.append(headers)
        return 200, {}, b"[]"

    with stand_in(elsewhere) as other:
        def moved(method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
            # "localhost": another host to requests, which keeps the Private-Token header.
            return 302, {"Location": other.replace("127.0.0.1", "localhost") + path}, b""

        with stand_in(moved) as url:
            if forge == "github":
                result = run(tmp_path, url, plan_of(tmp_path, WIDENING))
            else:
                result = run_env(
                    tmp_path, plan_of(tmp_path, WIDENING), "--forge", "gitlab",
                    CI_API_V4_URL=url, OAUTH2_SYNC_GITLAB_TOKEN="gitlab-token-for-tests",
                    CI_PROJECT_ID="42", CI_MERGE_REQUEST_IID="7")
    what = "the pull request's reviews" if forge == "github" else "the merge request's approvals"
    assert (result.returncode, result.stdout, seen) == (1, "", [])
    assert result.stderr == (
        f"Error: reading {what}: {url} answered a redirect (HTTP 302); check the API URL\n"
    )


@pytest.mark.parametrize(("url", "why"), [
    ("http://evil.example\\@127.0.0.1:9", "it holds a backslash"),
    ("https://user:hunter2@api.github.com", "it holds user info (credentials belong in "
     "registry.auth)"),
    ("https://api.github.com?x=@evil", "it holds a query or fragment ('?' or '#')"),
    ("http://github.example", "it must be https (plain http only for a loopback address)"),
])
def test_an_api_url_parsers_read_differently_is_refused_unshown(url: str, why: str) -> None:
    with pytest.raises(UsageError) as refused:
        check_api_url(url, "GITHUB_API_URL")
    assert str(refused.value) == f"GITHUB_API_URL is refused: {why}; check the variable"


@pytest.mark.parametrize("event", [
    "[1, 2]",
    json.dumps({"pull_request": {"number": True, "head": {"sha": SHA}}}),
    json.dumps({"pull_request": {"number": 5, "head": {"sha": "../../../user/repos"}}}),
    json.dumps({"pull_request": {"number": -5, "head": {"sha": SHA}}}),
])
def test_a_forged_event_file_is_one_line(tmp_path: Path, event: str) -> None:
    write_repo(tmp_path, [PORTAL, ETL], extra=APPROVERS)
    github = GitHubReviews()
    (tmp_path / "event.json").write_text(event)
    with stand_in(github.handle) as url:
        result = run_env(tmp_path, plan_of(tmp_path, WIDENING), GITHUB_API_URL=url,
                         GITHUB_TOKEN=github.token, GITHUB_REPOSITORY="example-org/oauth2-clients",
                         GITHUB_EVENT_PATH=str(tmp_path / "event.json"))
    assert (result.returncode, result.stdout, github.statuses) == (1, "", [])
    assert result.stderr in (
        "Error: no pull request to review: pass --pull and --sha, or run on a pull_request "
        "or pull_request_review event\n",
        "Error: the pull request number must be positive and the commit 40 or 64 lowercase "
        "hex digits; check --pull, --sha or GITHUB_EVENT_PATH\n",
    )


@pytest.mark.parametrize(("answer", "said"), [
    (b"<html>rate limited</html>", "answered no JSON list"),
    (b'{"message": "a dict"}', "answered no JSON list"),
    (b"[" + b" " * (9 * 1024 * 1024) + b"]", "answered more than 8388608 bytes"),
], ids=["html", "dict", "huge"])
def test_a_hostile_review_answer_is_one_line(tmp_path: Path, answer: bytes, said: str) -> None:
    write_repo(tmp_path, [PORTAL, ETL], extra=APPROVERS)
    with stand_in(lambda *_: (200, {}, answer)) as url:
        result = run(tmp_path, url, plan_of(tmp_path, WIDENING))
    assert (result.returncode, result.stdout) == (1, "")
    prefix = "reading the pull request's reviews: " if "JSON" in said else ""
    assert result.stderr == f"Error: {prefix}{url} {said}; check the API URL\n"


def test_reviews_of_deleted_users_and_odd_entries_are_skipped(tmp_path: Path) -> None:
    write_repo(tmp_path, [PORTAL, ETL], extra=APPROVERS)
    github = GitHubReviews()
    github.reviews += [{"user": None, "state": "APPROVED", "commit_id": SHA}, "junk", {}]
    github.approve("sec-alice")
    with stand_in(github.handle) as url:
        result = run(tmp_path, url, plan_of(tmp_path, WIDENING))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("access review: success:")
