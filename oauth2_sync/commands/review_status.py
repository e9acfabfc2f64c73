"""``review-status``: whether a plan's widening changes have the approvals the settings
require, set as the commit status ``oauth2-sync/access-review`` (GitHub) or as the exit
code of a job (GitLab)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import click

from oauth2_sync.commands.base import Context, common_options, exit_with, pass_ctx
from oauth2_sync.errors import UsageError


def _env(name: str, *fallbacks: str) -> str:
    for key in (name, *fallbacks):
        value = os.environ.get(key)
        if value:
            return value
    raise UsageError(f"{name} is not set; the CI kit's review job sets it (see "
                     "docs/how-to/enforce-access-review.md)")


def _number(name: str) -> int:
    value = _env(name)
    if not (value.isascii() and value.isdecimal()):
        raise UsageError(f"{name} must be a number; the CI kit's review job sets it")
    return int(value)


def _event() -> dict[str, object]:
    """The pull request of the GitHub event that started the job, if any."""
    path = os.environ.get("GITHUB_EVENT_PATH")
    if not path:
        return {}
    try:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read GITHUB_EVENT_PATH {path}: {exc}; pass --pull and --sha") \
            from None
    pull = event.get("pull_request") if isinstance(event, dict) else None
    return pull if isinstance(pull, dict) else {}


COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
"""A commit ID as Git spells it (SHA-1 or SHA-256): it goes into an API path."""


def _pull_and_commit(pull: int | None, sha: str | None) -> tuple[int, str]:
    """The pull request number and head commit: the options, else the event's."""
    event = _event()
    head = event.get("head")
    number = pull if pull is not None else event.get("number")
    commit = sha or (head.get("sha") if isinstance(head, dict) else None)
    if type(number) is not int or not isinstance(commit, str):
        raise UsageError("no pull request to review: pass --pull and --sha, or run on a "
                         "pull_request or pull_request_review event")
    if number < 1 or not COMMIT.fullmatch(commit):
        raise UsageError("the pull request number must be positive and the commit 40 or 64 "
                         "lowercase hex digits; check --pull, --sha or GITHUB_EVENT_PATH")
    return number, commit


@click.command("review-status", short_help="Set the access-review commit status of a pull request.")
@click.option("--plan", "plan_file", type=click.Path(path_type=Path), required=True,
              help="The plan document (`plan --out FILE` or `plan --format json`).")
@click.option("--forge", type=click.Choice(["github", "gitlab"]), default="github",
              show_default=True, help="Where the pull (merge) request is.")
@click.option("--pull", "pull", type=int, default=None,
              help="Pull request number (GitHub; default: from GITHUB_EVENT_PATH).")
@click.option("--sha", default=None,
              help="Commit to set the status on (GitHub; default: the pull request's head).")
@common_options
@pass_ctx
def review_status(
    ctx: Context, plan_file: Path, forge: str, pull: int | None, sha: str | None
) -> None:
    """Check that widening changes have the approvals `review.widening_approvers` requires.

    GitHub: sets the commit status oauth2-sync/access-review to pending or success and
    exits 0 (GITHUB_API_URL, GITHUB_REPOSITORY, and OAUTH2_SYNC_GITHUB_TOKEN or
    GITHUB_TOKEN). GitLab: exits 1 while an approval is missing (CI_API_V4_URL,
    CI_PROJECT_ID, CI_MERGE_REQUEST_IID, OAUTH2_SYNC_GITLAB_TOKEN).
    """
    from oauth2_sync import plandoc, review
    from oauth2_sync.settings import load_settings

    settings = load_settings(ctx.config)
    made = plandoc.load(plan_file)
    requirements = review.required(made, settings)
    if forge == "gitlab":
        lab = review.GitLab(
            _env("CI_API_V4_URL"), _env("OAUTH2_SYNC_GITLAB_TOKEN"), _env("CI_PROJECT_ID"),
            _number("CI_MERGE_REQUEST_IID"),
        )
        verdict = review.evaluate(requirements, lab)
        click.echo(f"access review: {verdict.state}: {verdict.description}")
        exit_with(0 if verdict.state == "success" else 1)
        return  # exit_with returns on 0: an approved merge request is not a GitHub pull
    number, commit = _pull_and_commit(pull, sha)
    hub = review.GitHub(
        os.environ.get("GITHUB_API_URL") or "https://api.github.com",
        _env("OAUTH2_SYNC_GITHUB_TOKEN", "GITHUB_TOKEN"), _env("GITHUB_REPOSITORY"), number,
        commit,
    )
    verdict = review.evaluate(requirements, hub)
    hub.publish(commit, verdict)
    click.echo(f"access review: {verdict.state}: {verdict.description}")
