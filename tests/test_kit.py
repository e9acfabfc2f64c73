"""The CI kit: the documentation's tutorial and command lines, the shipped CI definitions,
pre-commit hooks.

- The tutorial's (docs/tutorial.md) ```sh blocks run in order in one bash session against
  a reference server started here (its port replaces the tutorial's 8080). Each command's
  exit status is checked (``# exit N`` on the command, else 0), and a ```text block right after a shell
  block must appear, line by line and in order, in the output of that block's last
  command (``...`` skips lines). Commands marked ``(not run by tests)`` are only parsed.
- The GitHub workflows run job by job as GitHub's runner would: ``run:`` steps in bash
  with ``${{ ... }}`` replaced from the test's variables, secrets and event, and the
  ``actions/github-script`` steps in node against an in-memory stand-in of the few
  GitHub REST calls they make (the only way to run them off GitHub), so that the sticky
  comment and the drift issue are checked too. The GitLab jobs run their scripts the same
  way, against the reference server over HTTP with the seed's read-only and read-write
  credentials, and a loopback stand-in of GitLab's notes API. New client secrets go to a
  loopback stand-in of Vault's KV v2 API.
- The ``$ `` commands of the ```console blocks of every page under docs/ run in order,
  one bash session per page, in a fresh copy of examples/ (its embedded ``local:``
  registry): exit status as above, and the lines under each command must appear in its
  output the same way.
- Every ``oauth2-sync`` command line of docs/ and the CI files is parsed by the real
  click command tree (``oauth2_sync.cli.cli``): an unknown command, option or value fails.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click
import pytest
import requests
import yaml
from support.docs import command_lines, doc_location, page_console_commands, pages
from support.github_actions import GitHubRunner, install_from_checkout
from support.gitlab_ci import run_gitlab_job
from support.kit import (
    DRIFT_LABEL,
    EXAMPLE_IDS,
    EXAMPLES,
    GITLAB_CI,
    PLAN_MARKER,
    ROOT,
    TIMEOUT,
    TUTORIAL_ADDRESS,
    WORKFLOWS,
    action_invocations,
    bash,
    ci_scripts,
    clean_env,
    copy_examples,
    edit_local_client,
    no_secret_in,
    program_dir,
    store_secret,
)
from support.oidc_peer import INITIAL_ACCESS_TOKEN, running_peer
from support.registry import RegistryServer
from support.shell import ShellCommand, invocations, parse_with_click
from support.standins import (
    GitHubReviews,
    GitLabApprovals,
    GitLabMergeRequests,
    GitLabNotes,
    Vault,
    stand_in,
)
from support.tutorial import TUTORIAL, TutorialBlock, assert_shows, tutorial_blocks, tutorial_text

from oauth2_sync import __version__
from oauth2_sync.cli import cli
from oauth2_sync.refserver.store import RegistryStore
from oauth2_sync.settings import load_settings

# --- the environment every script runs in -------------------------------------


@pytest.fixture(scope="module")
def bin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``oauth2-sync`` and ``python3`` on PATH: this checkout, this interpreter."""
    return program_dir(tmp_path_factory.mktemp("bin"))


# --- shell text: commands, heredocs, oauth2-sync invocations -------------------


def test_the_tutorial_runs_end_to_end(
    tmp_path: Path, bin_dir: Path, start_registry_server: Callable[..., RegistryServer]
) -> None:
    server = start_registry_server()
    address = server.base_url.split("//", 1)[1].split("/", 1)[0]
    work, logs = tmp_path / "work", tmp_path / "logs"
    work.mkdir()
    logs.mkdir()
    blocks = tutorial_blocks()
    ran: list[tuple[ShellCommand, TutorialBlock]] = []
    script = [f"cd {shlex.quote(str(work))}"]
    for block in blocks:
        for command in block.commands:
            if command.head.startswith("git clone "):
                # This checkout stands in for the clone (installed already).
                assert not command.run
                script.append(f"ln -s {shlex.quote(str(ROOT))} oauth2-sync")
            elif command.run:
                n = len(ran)
                ran.append((command, block))
                text = command.text.replace(TUTORIAL_ADDRESS, address)
                script.append(f"{{\n{text}\n}} >{logs}/{n}.out 2>&1 </dev/null")
                script.append(f"echo $? >{logs}/{n}.rc")
    assert len(ran) >= 30
    # A session of its own: should a command not end, the whole group is stopped.
    process = subprocess.Popen(
        ["bash", "--noprofile", "--norc", "-c", "\n".join(script)], env=clean_env(bin_dir),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    try:
        shell_output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"the tutorial did not finish in {TIMEOUT} s")
    assert process.returncode == 0, shell_output
    for n, (command, block) in enumerate(ran):
        output = (logs / f"{n}.out").read_text()
        status = int((logs / f"{n}.rc").read_text())
        at = f"{doc_location(TUTORIAL, command.line)}: {command.head}"
        assert status == command.expect, f"{at}\nexit status {status}\n{output}"
        if block.output is not None and command is block.commands[-1]:
            expected = [line.replace(TUTORIAL_ADDRESS, address) for line in block.output]
            assert_shows(expected, output, at)
    config = work / "oauth2-sync-tutorial" / "my-clients"
    assert sorted(p.name for p in (config / ".secrets").iterdir()) == [
        "acme-reporting.json", "acme-web-portal.json",
    ]
    log = subprocess.run(
        ["git", "log", "--format=%s"], cwd=config, env=clean_env(bin_dir),
        capture_output=True, text=True, check=True,
    ).stdout
    assert log.splitlines() == [
        "CI: oauth2-sync plan, apply and drift",
        "Reporting service: one-hour access tokens",
        "Acme: reporting service and customer portal",
    ]
    assert (config / ".github" / "workflows" / "oauth2-sync-plan.yml").is_file()


def test_every_documented_command_line_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Relative paths as the pages have them: the tutorial's from its folder (the clone
    # beside it), the others' from the repository's top.
    (tmp_path / "oauth2-sync").symlink_to(ROOT)
    for name in ("examples", "tests"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    seen: set[str] = set()
    for page in pages():
        for at, args in command_lines(page):
            try:
                seen.add(" ".join(parse_with_click(args)))
            except click.ClickException as error:
                pytest.fail(f"{at}: oauth2-sync {shlex.join(args)}: {error.format_message()}")
    assert {"validate", "plan", "apply", "drift", "schema", "registry serve", "adopt"} <= seen


# Pages with a ``$ `` command to run (one that only shows `registry serve` has none).
CONSOLE_PAGES = [p for p in pages() if any(c.command.run for c in page_console_commands(p))]


@pytest.mark.parametrize("page", CONSOLE_PAGES, ids=[p.name for p in CONSOLE_PAGES])
def test_documented_console_commands_run_as_shown(
    page: Path, tmp_path: Path, bin_dir: Path
) -> None:
    commands = [c for c in page_console_commands(page) if c.command.run]
    work, logs = copy_examples(tmp_path / "repo"), tmp_path / "logs"
    logs.mkdir()
    script = ["set +e"]  # each command's status is recorded, not fatal
    for n, console in enumerate(commands):
        script.append(f"{{\n{console.command.text}\n}} >{logs}/{n}.out 2>&1 </dev/null")
        script.append(f"echo $? >{logs}/{n}.rc")
    ran = bash("\n".join(script), work, clean_env(bin_dir))
    assert ran.returncode == 0, ran.stdout
    for n, console in enumerate(commands):
        output = (logs / f"{n}.out").read_text()
        status = int((logs / f"{n}.rc").read_text())
        at = f"{doc_location(page, console.command.line)}: {console.command.head}"
        assert status == console.command.expect, f"{at}\nexit status {status}\n{output}"
        assert_shows(console.output, output, at)


def test_the_tutorial_serves_and_configures_the_same_address() -> None:
    registry = cli.commands["registry"]
    assert isinstance(registry, click.Group)
    port = next(p for p in registry.commands["serve"].params if p.name == "port")
    text, _ = tutorial_text()
    assert f"127.0.0.1:{port.default}" == TUTORIAL_ADDRESS
    assert f"registry listening on http://{TUTORIAL_ADDRESS}/v1" in text
    assert f"url: http://{TUTORIAL_ADDRESS}/v1" in text
    skipped = [c.head for b in tutorial_blocks() for c in b.commands if not c.run]
    assert len(skipped) <= 10, skipped


# --- loopback stand-ins: Vault and GitLab --------------------------------------


# --- GitHub Actions, run locally -------------------------------------------------

def test_github_workflows_comment_apply_and_track_drift(tmp_path: Path, bin_dir: Path) -> None:
    workspace = copy_examples(tmp_path / "repo")
    state = tmp_path / "state"
    state.mkdir()
    runner = GitHubRunner(workspace, clean_env(bin_dir), state)
    runner.vars = {"OAUTH2_SYNC_PLAN_CLIENT_ID": "oauth2-sync-plan",
                   "OAUTH2_SYNC_APPLY_CLIENT_ID": "oauth2-sync-ci"}
    runner.secrets = {"OAUTH2_SYNC_PLAN_CLIENT_SECRET": "plan-secret-for-local-tests",
                      "OAUTH2_SYNC_APPLY_CLIENT_SECRET": "ci-secret-for-local-tests"}

    def pull_request(sha: str) -> None:
        runner.event = {"pull_request": {"number": 7, "head": {
            "sha": sha, "repo": {"full_name": "example-org/oauth2-clients"}}}}

    # Two pushes to a pull request: one comment, updated in place.
    pull_request("1111111aaaa")
    first = runner.run("oauth2-sync-plan.yml", "plan")
    assert first.ok, first.log
    assert first.step("Plan").outputs == {"exit-code": "2", "document": "plan.md"}
    pull_request("2222222bbbb")
    second = runner.run("oauth2-sync-plan.yml", "plan")
    assert second.ok, second.log
    comments = runner.api_state()["comments"]
    assert len(comments) == 1
    body = comments[0]["body"]
    assert body.startswith(PLAN_MARKER + "\n### oauth2-sync plan\n")
    assert "**Plan: 12 to add, 0 to change, 0 to destroy.**" in body
    run_url = "https://github.example/example-org/oauth2-clients/actions/runs/4242"
    assert f"<sub>Commit 2222222, [workflow run]({run_url}).</sub>" in body
    assert (state / "github-step-summary").read_text().startswith("### oauth2-sync plan")

    # Merged: apply; new secrets reach Vault and leave the runner.
    vault = Vault()
    with stand_in(vault.handle) as vault_url:
        runner.vars |= {"OAUTH2_SYNC_SECRET_STORE": "vault", "VAULT_ADDR": vault_url}
        runner.secrets["VAULT_TOKEN"] = vault.token
        applied = runner.run("oauth2-sync-apply.yml", "apply")
    assert applied.ok, applied.log
    assert "Apply complete: 12 created, 0 updated, 0 deleted." in applied.log
    assert sorted(vault.data) == [f"oauth2-clients/{cid}" for cid in EXAMPLE_IDS]
    # The reference registry uses our client IDs: the registry's is the same.
    assert all(
        set(v) == {"client_id", "registry_client_id", "client_secret", "created_at"}
        and v["registry_client_id"] == v["client_id"]
        for v in vault.data.values()
    )
    assert not (workspace / ".secrets").exists()

    # Run by hand to replace lost secrets: rotated, and the new ones reach Vault.
    before = {k: v["client_secret"] for k, v in vault.data.items()}
    issued = vault.secrets
    runner.inputs = {"rotate": "acme-reporting  globex-etl"}
    with stand_in(vault.handle) as vault_url:
        runner.vars["VAULT_ADDR"] = vault_url
        rotated = runner.run("oauth2-sync-apply.yml", "apply")
    runner.inputs = {}
    assert rotated.ok, rotated.log
    assert "Rotated 2 secrets." in rotated.log
    changed = sorted(k for k, v in vault.data.items() if v["client_secret"] != before[k])
    assert changed == ["oauth2-clients/acme-reporting", "oauth2-clients/globex-etl"]
    issued |= vault.secrets

    # Nightly: no drift, no issue; then an out-of-band edit opens one, kept up to date,
    # and closed once apply has restored the registry.
    quiet = runner.run("oauth2-sync-drift.yml", "drift")
    assert quiet.ok, quiet.log
    assert quiet.step("Drift").outputs == {"exit-code": "0", "document": "drift.md"}
    assert runner.api_state()["issues"] == []
    assert (workspace / "drift-junit.xml").read_text().count("<failure") == 0
    db = workspace / ".oauth2-sync" / "registry.db"
    edit_local_client(db, "acme-web-portal", name="Renamed by hand")
    for _ in range(2):
        drifted = runner.run("oauth2-sync-drift.yml", "drift")
        assert drifted.ok, drifted.log
        assert drifted.step("Drift").outputs == {"exit-code": "2", "document": "drift.md"}
    issues = runner.api_state()["issues"]
    assert len(issues) == 1 and issues[0]["state"] == "open"
    assert issues[0]["labels"] == [{"name": DRIFT_LABEL}]
    assert issues[0]["title"] == "oauth2-sync: the registry has drifted from the repository"
    assert "Renamed by hand" in issues[0]["body"] and "acme-web-portal" in issues[0]["body"]
    assert runner.api_state()["labels"] == [DRIFT_LABEL]
    assert (workspace / "drift-junit.xml").read_text().count("<failure") == 1
    assert any(u["uses"].startswith("actions/upload-artifact@") and
               u["with"]["path"] == "drift-junit.xml" for u in runner.used)
    with stand_in(vault.handle) as vault_url:
        runner.vars["VAULT_ADDR"] = vault_url
        restored = runner.run("oauth2-sync-apply.yml", "apply")
    assert restored.ok and "acme-web-portal: updated (name)" in restored.log, restored.log
    assert "the store holds a secret for each of the 12 client(s)" in restored.log
    closed = runner.run("oauth2-sync-drift.yml", "drift")
    assert closed.ok, closed.log
    issue = runner.api_state()["issues"][0]
    assert (issue["state"], issue["state_reason"]) == ("closed", "completed")
    assert runner.api_state()["comments"][-1]["body"].startswith("No drift any more")

    # A pull request whose files do not validate: annotations, a failed job, and the
    # comment says so instead of showing an outdated plan.
    broken = workspace / "clients" / "payments" / "reporting.yaml"
    broken.write_text(broken.read_text().replace("scopes: [read]", "scopes: [raed]"))
    pull_request("3333333cccc")
    invalid = runner.run("oauth2-sync-plan.yml", "plan")
    assert not invalid.ok
    assert invalid.step("Validate").outcome == "failure"
    assert invalid.step("Plan").outcome == "skipped"
    assert (
        "::error file=clients/payments/reporting.yaml,line=8,col=14,title=oauth2-sync schema::"
        in invalid.log
    )
    comments = runner.api_state()["comments"]
    assert [c["body"].startswith(PLAN_MARKER) for c in comments].count(True) == 1
    assert "**No plan: the files do not validate.**" in comments[0]["body"]

    everything = [first.log, second.log, applied.log, rotated.log, quiet.log, drifted.log,
                  restored.log, closed.log, invalid.log, runner.api.read_text()]
    everything += [p.read_text() for p in workspace.glob("*.md")]
    no_secret_in(issued, *everything)


def test_the_apply_workflow_refuses_to_start_without_a_secret_store(
    tmp_path: Path, bin_dir: Path
) -> None:
    workspace = copy_examples(tmp_path / "repo")
    state = tmp_path / "state"
    state.mkdir()
    runner = GitHubRunner(workspace, clean_env(bin_dir), state)
    result = runner.run("oauth2-sync-apply.yml", "apply")
    assert result.step("Check the secret store").outcome == "failure"
    assert result.step("Apply").outcome == "skipped"
    assert result.step("Check that the store holds every client's secret").outcome == "skipped"
    assert (
        "store-secret: OAUTH2_SYNC_SECRET_STORE is not set (or is 'directory') on a CI runner"
        in result.log
    )
    assert not (workspace / ".oauth2-sync").exists()  # the registry was never opened


def test_a_cancelled_apply_job_loses_no_secret_unnamed(
    tmp_path: Path, bin_dir: Path, start_registry_server: Callable[..., RegistryServer]
) -> None:
    """Issue #12, 1: the apply job cancelled mid-apply (real signals to the real
    processes, as GitHub's runner sends them) while the store hangs. Every client it
    created has its secret in the store, or is named by the next run, on a fresh runner
    without the old workspace or journal; a rotation by hand then completes the store."""
    server = start_registry_server()
    vault = Vault()

    def fresh_runner(name: str, vault_url: str) -> GitHubRunner:
        workspace = copy_examples(tmp_path / name / "repo")
        settings = workspace / "oauth2-sync.yaml"
        settings.write_text(settings.read_text().replace(
            "url: local:.oauth2-sync/registry.db", f"url: {server.base_url}"
        ))
        (tmp_path / name / "state").mkdir()
        runner = GitHubRunner(workspace, clean_env(bin_dir), tmp_path / name / "state")
        runner.vars = {"OAUTH2_SYNC_APPLY_CLIENT_ID": server.ci[0],
                       "OAUTH2_SYNC_SECRET_STORE": "vault", "VAULT_ADDR": vault_url}
        runner.secrets = {"OAUTH2_SYNC_APPLY_CLIENT_SECRET": server.ci[1],
                          "VAULT_TOKEN": vault.token}
        return runner

    def in_registry() -> list[str]:
        store = RegistryStore(server.db)
        try:
            return sorted({c["clientId"] for c in store.list_clients()} & set(EXAMPLE_IDS))
        finally:
            store.close()

    with stand_in(vault.handle) as vault_url:
        vault.hold_after = 3
        first = fresh_runner("first", vault_url)
        first.cancel = ("Apply", vault.held)
        cancelled = first.run("oauth2-sync-apply.yml", "apply")
        vault.hold_after = None
        vault.release.set()
        assert cancelled.step("Apply").outcome == "cancelled", cancelled.log
        assert cancelled.step("Check that the store holds every client's secret").outcome == (
            "skipped"
        )
        assert not (first.workspace / ".secrets").exists()  # nothing waited on the runner
        created = in_registry()
        stored = sorted(k.removeprefix("oauth2-clients/") for k in vault.data)
        lost = sorted(set(created) - set(stored))
        assert lost, (created, stored)  # the cancellation caught secrets on their way
        assert len(stored) == 3

        # The next run, on a fresh runner: the rest is created, and the lost are named.
        second = fresh_runner("second", vault_url)
        after = second.run("oauth2-sync-apply.yml", "apply")
        assert after.step("Apply").outcome == "success", after.log
        audit = after.step("Check that the store holds every client's secret")
        assert audit.outcome == "failure"
        assert audit.log.splitlines() == [
            *(f"store-secret: {cid}: no secret in vault secret/oauth2-clients/{cid} (a run "
              "that stopped between creating it and storing its secret?)" for cid in lost),
            f"store-secret: {len(lost)} of 12 client(s) have no secret in the store. Unless "
            "their secrets are kept elsewhere, issue new ones: oauth2-sync rotate-secret "
            + " ".join(lost),
        ]
        assert in_registry() == sorted(EXAMPLE_IDS)

        # The remedy the message names: a run by hand with `rotate`.
        second.inputs = {"rotate": " ".join(lost)}
        rotated = second.run("oauth2-sync-apply.yml", "apply")
        assert rotated.ok, rotated.log
        assert "the store holds a secret for each of the 12 client(s)" in rotated.log
    assert sorted(vault.data) == [f"oauth2-clients/{cid}" for cid in EXAMPLE_IDS]
    no_secret_in(vault.secrets, cancelled.log, after.log, rotated.log)


# --- GitLab CI, run locally ----------------------------------------------------


def test_gitlab_jobs_note_apply_and_report_drift(
    tmp_path: Path, bin_dir: Path, start_registry_server: Callable[..., RegistryServer]
) -> None:
    server = start_registry_server()
    workspace = copy_examples(tmp_path / "repo")
    settings = workspace / "oauth2-sync.yaml"
    settings.write_text(settings.read_text().replace(
        "url: local:.oauth2-sync/registry.db", f"url: {server.base_url}"
    ))
    gitlab, vault = GitLabNotes(), Vault()
    with stand_in(gitlab.handle) as gitlab_url, stand_in(vault.handle) as vault_url:
        env = clean_env(bin_dir) | {
            "CI": "true", "GITLAB_CI": "true",
            "CI_API_V4_URL": f"{gitlab_url}/api/v4", "CI_PROJECT_ID": "42",
            "CI_MERGE_REQUEST_IID": "7", "CI_COMMIT_SHORT_SHA": "1111111",
            "CI_JOB_URL": "https://gitlab.example/example-org/oauth2-clients/-/jobs/99",
            # Project CI/CD variables: the seed's read-only and read-write credentials.
            "OAUTH2_SYNC_PLAN_CLIENT_ID": server.plan[0],
            "OAUTH2_SYNC_PLAN_CLIENT_SECRET": server.plan[1],
            "OAUTH2_SYNC_APPLY_CLIENT_ID": server.ci[0],
            "OAUTH2_SYNC_APPLY_CLIENT_SECRET": server.ci[1],
            "OAUTH2_SYNC_GITLAB_TOKEN": gitlab.token,
            "OAUTH2_SYNC_SECRET_STORE": "vault", "VAULT_ADDR": vault_url,
            "VAULT_TOKEN": vault.token,
        }
        first = run_gitlab_job(workspace, "oauth2-sync-plan", env)
        assert first.status == 0, first.log
        assert "gitlab-mr-note: created note 4 on merge request !7" in first.log
        second = run_gitlab_job(
            workspace, "oauth2-sync-plan", env | {"CI_COMMIT_SHORT_SHA": "2222222"}
        )
        assert second.status == 0, second.log
        assert "gitlab-mr-note: updated note 4 on merge request !7" in second.log
        notes = gitlab.plan_notes()
        assert len(notes) == 1 and len(gitlab.notes) == 4
        assert "**Plan: 12 to add, 0 to change, 0 to destroy.**" in notes[0]
        assert notes[0].endswith(f"<sub>Commit 2222222, [job]({env['CI_JOB_URL']}).</sub>\n")

        applied = run_gitlab_job(workspace, "oauth2-sync-apply", env)
        assert applied.status == 0, applied.log
        assert sorted(vault.data) == [f"oauth2-clients/{cid}" for cid in EXAMPLE_IDS]
        assert not (workspace / ".secrets").exists()
        issued = vault.secrets
        old = vault.data["oauth2-clients/initech-batch"]["client_secret"]
        rotated = run_gitlab_job(
            workspace, "oauth2-sync-apply", env | {"OAUTH2_SYNC_ROTATE": "initech-batch"}
        )
        assert rotated.status == 0, rotated.log
        assert vault.data["oauth2-clients/initech-batch"]["client_secret"] != old
        issued |= vault.secrets

        quiet = run_gitlab_job(workspace, "oauth2-sync-drift", env)
        assert quiet.status == 0, quiet.log
        session = requests.Session()
        session.headers.update(server.headers())
        kiosk = f"{server.base_url}/oauth2-clients/initech-kiosk"
        session.delete(kiosk, timeout=10).raise_for_status()
        drifted = run_gitlab_job(workspace, "oauth2-sync-drift", env)
        assert (drifted.status, drifted.allowed_to_fail) == (2, True), drifted.log
        assert (
            '  - client "initech-kiosk" missing from the registry (clients/platform/initech.yaml:'
            in drifted.log
        )
        junit = (workspace / "drift-junit.xml").read_text()
        assert junit.count("<failure") == 1 and 'type="missing"' in junit

        # A merge request that does not validate: the job fails, the note says so.
        broken = workspace / "clients" / "payments" / "reporting.yaml"
        broken.write_text(broken.read_text().replace("scopes: [read]", "scopes: [raed]"))
        invalid = run_gitlab_job(workspace, "oauth2-sync-plan", env)
        assert invalid.status == 1
        assert "**No plan: the files do not validate.**" in gitlab.plan_notes()[0]
    no_secret_in(issued, first.log, second.log, applied.log, rotated.log, quiet.log,
                 drifted.log, json.dumps(gitlab.notes))


def test_a_cancelled_gitlab_apply_job_loses_no_secret_unnamed(
    tmp_path: Path, bin_dir: Path, start_registry_server: Callable[..., RegistryServer]
) -> None:
    """Issue #12, 1, on GitLab: the job cancelled (SIGTERM, then SIGKILL, then
    after_script) while the store hangs; the next pipeline, in a fresh workspace, names
    every client whose secret the store lacks."""
    server = start_registry_server()
    vault = Vault()

    def fresh_workspace(name: str) -> Path:
        workspace = copy_examples(tmp_path / name)
        settings = workspace / "oauth2-sync.yaml"
        settings.write_text(settings.read_text().replace(
            "url: local:.oauth2-sync/registry.db", f"url: {server.base_url}"
        ))
        return workspace

    with stand_in(vault.handle) as vault_url:
        env = clean_env(bin_dir) | {
            "CI": "true", "GITLAB_CI": "true",
            "OAUTH2_SYNC_APPLY_CLIENT_ID": server.ci[0],
            "OAUTH2_SYNC_APPLY_CLIENT_SECRET": server.ci[1],
            "OAUTH2_SYNC_SECRET_STORE": "vault", "VAULT_ADDR": vault_url,
            "VAULT_TOKEN": vault.token,
        }
        vault.hold_after = 5
        first = fresh_workspace("first")
        cancelled = run_gitlab_job(first, "oauth2-sync-apply", env, cancel=vault.held)
        vault.hold_after = None
        vault.release.set()
        assert cancelled.status != 0
        assert not (first / ".secrets").exists()
        store = RegistryStore(server.db)
        created = {c["clientId"] for c in store.list_clients()} & set(EXAMPLE_IDS)
        store.close()
        stored = {k.removeprefix("oauth2-clients/") for k in vault.data}
        lost = sorted(created - stored)
        assert lost and len(stored) == 5

        after = run_gitlab_job(fresh_workspace("second"), "oauth2-sync-apply", env)
        assert after.status == 1, after.log
        assert "Apply complete: " in after.log
        named = [
            line for line in after.log.splitlines() if line.startswith("store-secret: ")
        ]
        assert named == [
            *(f"store-secret: {cid}: no secret in vault secret/oauth2-clients/{cid} (a run "
              "that stopped between creating it and storing its secret?)" for cid in lost),
            f"store-secret: {len(lost)} of 12 client(s) have no secret in the store. Unless "
            "their secrets are kept elsewhere, issue new ones: oauth2-sync rotate-secret "
            + " ".join(lost),
        ]
    no_secret_in(vault.secrets, cancelled.log, after.log)


def test_plan_jobs_post_a_plan_that_leaves_out_what_the_registry_cannot_hold(
    tmp_path: Path, bin_dir: Path
) -> None:
    """On a standard OAuth server 7 example clients cannot be held: the plan of the
    other 5 still reaches the pull request, with the 7 listed, and the check fails."""
    workspace = copy_examples(tmp_path / "repo")
    settings = workspace / "oauth2-sync.yaml"
    left_out = "7 clients are left out of this plan: the registry cannot hold them."
    with running_peer() as peer:
        settings.write_text(settings.read_text().replace(
            "url: local:.oauth2-sync/registry.db", f"url: {peer.registry_url}"
        ))
        env = clean_env(bin_dir) | {"OAUTH2_SYNC_INITIAL_ACCESS_TOKEN": INITIAL_ACCESS_TOKEN}
        state = tmp_path / "state"
        state.mkdir()
        runner = GitHubRunner(workspace, env, state)
        runner.event = {"pull_request": {"number": 7, "head": {
            "sha": "4444444dddd", "repo": {"full_name": "example-org/oauth2-clients"}}}}
        github = runner.run("oauth2-sync-plan.yml", "plan")
        assert not github.ok
        assert github.step("Plan").outputs == {"exit-code": "1", "document": "plan.md"}
        (comment,) = runner.api_state()["comments"]
        assert "**Plan: 5 to add, 0 to change, 0 to destroy.**" in comment["body"]
        assert f"<p><strong>Error:</strong> {left_out}</p>" in comment["body"]

        gitlab = GitLabNotes()
        with stand_in(gitlab.handle) as gitlab_url:
            job = run_gitlab_job(workspace, "oauth2-sync-plan", env | {
                "CI": "true", "GITLAB_CI": "true", "CI_API_V4_URL": f"{gitlab_url}/api/v4",
                "CI_PROJECT_ID": "42", "CI_MERGE_REQUEST_IID": "7",
                "CI_COMMIT_SHORT_SHA": "4444444",
                "CI_JOB_URL": "https://gitlab.example/example-org/oauth2-clients/-/jobs/99",
                "OAUTH2_SYNC_GITLAB_TOKEN": gitlab.token,
            })
        assert job.status == 1, job.log
        (note,) = gitlab.plan_notes()
        assert "**Plan: 5 to add, 0 to change, 0 to destroy.**" in note
        assert left_out in note


# --- an unsafe plan: flagged on the pull request, applied only once approved -------

APPROVAL_LABEL = "oauth2-sync:allow-unsafe"
CAUTION = (
    "### oauth2-sync plan\n\n> [!CAUTION]\n> **Apply will refuse this plan**: it exceeds the "
    "safety limits of the settings.\n> - creates+updates: 12 exceeds 5 (safety.max_changes)\n>\n"
)
REFUSED = (
    "Error: the plan exceeds the safety limits: creates+updates: 12 exceeds 5 "
    "(safety.max_changes). Raise the limit in the settings, or pass --allow-unsafe for this run"
)


def unsafe_examples(target: Path) -> Path:
    """The example repository with ``safety.max_changes: 5``: its 12 creates are unsafe."""
    workspace = copy_examples(target)
    settings = workspace / "oauth2-sync.yaml"
    text = settings.read_text()
    assert "  max_changes: 50\n" in text
    settings.write_text(text.replace("  max_changes: 50\n", "  max_changes: 5\n"))
    return workspace


def test_github_an_unsafe_plan_is_flagged_and_applied_only_with_the_label(
    tmp_path: Path, bin_dir: Path
) -> None:
    workspace = unsafe_examples(tmp_path / "repo")
    state = tmp_path / "state"
    state.mkdir()
    runner = GitHubRunner(workspace, clean_env(bin_dir), state)
    runner.event = {"pull_request": {"number": 9, "head": {
        "sha": "5555555eeee", "repo": {"full_name": "example-org/oauth2-clients"}}}}
    planned = runner.run("oauth2-sync-plan.yml", "plan")
    assert planned.ok, planned.log  # a plan: the check passes, the comment warns
    (comment,) = runner.api_state()["comments"]
    assert comment["body"].startswith(f"{PLAN_MARKER}\n{CAUTION}")

    # Merged without the label: the apply job refuses before any write.
    runner.sha = "5" * 40
    api = runner.api_state()
    api["pulls"] = [{"number": 9, "merged_at": "2026-11-27T12:00:00Z",
                     "merge_commit_sha": runner.sha, "labels": [{"name": "oauth2-sync"}]}]
    runner.api.write_text(json.dumps(api))
    vault = Vault()
    runner.secrets["VAULT_TOKEN"] = vault.token
    with stand_in(vault.handle) as vault_url:
        runner.vars |= {"OAUTH2_SYNC_SECRET_STORE": "vault", "VAULT_ADDR": vault_url}
        refused = runner.run("oauth2-sync-apply.yml", "apply")
        assert refused.step("Approval of an unsafe plan").outputs == {"allow-unsafe": "false"}
        assert refused.step("Apply").outcome == "failure"
        assert REFUSED in refused.step("Apply").log.splitlines()
        assert vault.data == {}

        # A reviewer adds the label: the next run applies.
        api = runner.api_state()
        api["pulls"][0]["labels"].append({"name": APPROVAL_LABEL})
        runner.api.write_text(json.dumps(api))
        approved = runner.run("oauth2-sync-apply.yml", "apply")
    assert approved.ok, approved.log
    step = approved.step("Approval of an unsafe plan")
    assert (step.outputs, step.log) == (
        {"allow-unsafe": "true"},
        f"#9 is labelled {APPROVAL_LABEL}: applying with --allow-unsafe\n",
    )
    assert "Apply complete: 12 created, 0 updated, 0 deleted." in approved.log
    assert sorted(vault.data) == [f"oauth2-clients/{cid}" for cid in EXAMPLE_IDS]


def test_github_a_widening_change_waits_for_the_named_team_and_others_pass_at_once(
    tmp_path: Path, bin_dir: Path
) -> None:
    workspace = copy_examples(tmp_path / "repo")
    settings = workspace / "oauth2-sync.yaml"
    settings.write_text(settings.read_text() + (
        "review:\n  widening_approvers:\n    - team: example-org/security\n"
    ))
    env = clean_env(bin_dir)
    applied = bash("oauth2-sync apply --auto-approve", workspace, env)
    assert applied.returncode == 0, applied.stdout
    state = tmp_path / "state"
    state.mkdir()
    github = GitHubReviews(pull=11, head="2" * 40)
    apps = workspace / "clients" / "payments" / "apps.yaml"
    original = apps.read_text()
    with stand_in(github.handle) as url:
        event = state / "event.json"
        env |= {"GITHUB_API_URL": url, "GITHUB_REPOSITORY": "example-org/oauth2-clients",
                "GITHUB_EVENT_PATH": str(event)}
        runner = GitHubRunner(workspace, env, state)
        runner.secrets["OAUTH2_SYNC_REVIEW_TOKEN"] = github.token
        runner.event = {"pull_request": {"number": 11, "head": {
            "sha": "1" * 40, "repo": {"full_name": "example-org/oauth2-clients"}}}}
        event.write_text(json.dumps(runner.event))

        # A rename and a removed redirect URI: neutral and narrowing, green at once.
        apps.write_text(original.replace("name: Acme customer portal", "name: Acme portal")
                        .replace("      - https://portal.acme.example/silent-renew\n", ""))
        quiet = runner.run("oauth2-sync-plan.yml", "access-review")
        assert quiet.ok, quiet.log
        assert github.latest()[0] == "success"

        # A new redirect host: pending until a member of example-org/security approves.
        apps.write_text(original.replace(
            "      - https://portal.acme.example/silent-renew\n",
            "      - https://portal.acme.example/silent-renew\n      - https://evil.example/cb\n",
        ))
        runner.event["pull_request"]["head"]["sha"] = "2" * 40
        event.write_text(json.dumps(runner.event))
        held = runner.run("oauth2-sync-plan.yml", "access-review")
        assert held.ok, held.log
        assert github.latest() == (
            "pending", "widening changes need an approval from example-org/security "
            "(acme-web-portal)",
        )
        github.approve("someone-else")
        assert runner.run("oauth2-sync-review.yml", "access-review").ok
        assert github.latest()[0] == "pending"
        github.approve("sec-alice")
        approved = runner.run("oauth2-sync-review.yml", "access-review")
    assert approved.ok, approved.log
    assert github.latest() == ("success", "widening changes approved by example-org/security")
    assert [s["sha"][0] for s in github.statuses] == ["1", "2", "2", "2"]


def test_gitlab_a_widening_change_fails_the_review_job_until_the_named_group_approves(
    tmp_path: Path, bin_dir: Path
) -> None:
    workspace = copy_examples(tmp_path / "repo")
    settings = workspace / "oauth2-sync.yaml"
    settings.write_text(settings.read_text() + (
        "review:\n  widening_approvers:\n    - team: example-org/security\n"
    ))
    env = clean_env(bin_dir)
    applied = bash("oauth2-sync apply --auto-approve", workspace, env)
    assert applied.returncode == 0, applied.stdout
    gitlab = GitLabApprovals()
    apps = workspace / "clients" / "payments" / "apps.yaml"
    original = apps.read_text()
    with stand_in(gitlab.handle) as url:
        env |= {
            "CI": "true", "GITLAB_CI": "true", "CI_API_V4_URL": f"{url}/api/v4",
            "CI_PROJECT_ID": "42", "CI_MERGE_REQUEST_IID": "7", "CI_COMMIT_SHORT_SHA": "7777777",
            "CI_JOB_URL": "https://gitlab.example/example-org/oauth2-clients/-/jobs/99",
            "OAUTH2_SYNC_GITLAB_TOKEN": gitlab.token,
        }

        # A rename and a removed redirect URI: neutral and narrowing, passes at once
        # without asking GitLab anything.
        apps.write_text(original.replace("name: Acme customer portal", "name: Acme portal")
                        .replace("      - https://portal.acme.example/silent-renew\n", ""))
        quiet = run_gitlab_job(workspace, "oauth2-sync-access-review", env)
        assert quiet.status == 0, quiet.log
        assert (
            "access review: success: no change widens access, or no approval is required"
        ) in quiet.log.splitlines()
        assert gitlab.calls == []

        # A new redirect host: the job fails until a member of example-org/security approves.
        apps.write_text(original.replace(
            "      - https://portal.acme.example/silent-renew\n",
            "      - https://portal.acme.example/silent-renew\n      - https://evil.example/cb\n",
        ))
        pending = (
            "access review: pending: widening changes need an approval from "
            "example-org/security (acme-web-portal)"
        )
        held = run_gitlab_job(workspace, "oauth2-sync-access-review", env)
        assert (held.status, held.allowed_to_fail) == (1, False), held.log
        assert pending in held.log.splitlines()
        gitlab.approve("someone-else", 77)
        other = run_gitlab_job(workspace, "oauth2-sync-access-review", env)
        assert other.status == 1, other.log
        assert pending in other.log.splitlines()
        gitlab.approve("sec-alice", 31)
        approved = run_gitlab_job(workspace, "oauth2-sync-access-review", env)
    assert approved.status == 0, approved.log
    assert (
        "access review: success: widening changes approved by example-org/security"
    ) in approved.log.splitlines()
    assert "GET /api/v4/groups/example-org%2Fsecurity/members/all/31" in gitlab.calls
    no_secret_in({gitlab.token}, held.log, approved.log)


def test_gitlab_an_unsafe_plan_is_flagged_and_applied_only_with_the_label(
    tmp_path: Path, bin_dir: Path
) -> None:
    workspace = unsafe_examples(tmp_path / "repo")
    notes, requests_ = GitLabNotes(), GitLabMergeRequests("6" * 40)
    vault = Vault()
    with (
        stand_in(notes.handle) as notes_url,
        stand_in(requests_.handle) as requests_url,
        stand_in(vault.handle) as vault_url,
    ):
        env = clean_env(bin_dir) | {
            "CI": "true", "GITLAB_CI": "true", "CI_API_V4_URL": f"{notes_url}/api/v4",
            "CI_PROJECT_ID": "42", "CI_MERGE_REQUEST_IID": "7", "CI_COMMIT_SHORT_SHA": "6666666",
            "CI_JOB_URL": "https://gitlab.example/example-org/oauth2-clients/-/jobs/99",
            "OAUTH2_SYNC_GITLAB_TOKEN": notes.token,
        }
        planned = run_gitlab_job(workspace, "oauth2-sync-plan", env)
        assert planned.status == 0, planned.log
        (note,) = notes.plan_notes()
        assert note.startswith(f"{PLAN_MARKER}\n{CAUTION}")

        env |= {
            "CI_API_V4_URL": f"{requests_url}/api/v4", "CI_COMMIT_SHA": requests_.sha,
            "OAUTH2_SYNC_SECRET_STORE": "vault", "VAULT_ADDR": vault_url,
            "VAULT_TOKEN": vault.token,
        }
        refused = run_gitlab_job(workspace, "oauth2-sync-apply", env)
        assert refused.status == 1, refused.log
        assert (
            f"gitlab-unsafe-approved: no merged merge request of this commit is labelled "
            f"{APPROVAL_LABEL}"
        ) in refused.log.splitlines()
        assert REFUSED in refused.log.splitlines()
        assert vault.data == {}

        requests_.labels.append(APPROVAL_LABEL)
        approved = run_gitlab_job(workspace, "oauth2-sync-apply", env)
    assert approved.status == 0, approved.log
    assert f"gitlab-unsafe-approved: !9 is labelled {APPROVAL_LABEL}: approved" in approved.log
    assert "Apply complete: 12 created, 0 updated, 0 deleted." in approved.log
    assert sorted(vault.data) == [f"oauth2-clients/{cid}" for cid in EXAMPLE_IDS]


def test_the_apply_step_stops_cleanly_when_the_runner_cancels_it(
    tmp_path: Path, bin_dir: Path, start_registry_server: Callable[..., RegistryServer]
) -> None:
    """GitHub cancels a step by sending SIGINT to its entry process only: the action's
    step ``exec``s action/run_command.py, which passes the signal on to apply; apply starts no
    new write and exits 130, and the step records that status."""
    server = start_registry_server(latency_ms=300)
    workspace = copy_examples(tmp_path / "repo")
    settings = workspace / "oauth2-sync.yaml"
    settings.write_text(settings.read_text().replace(
        "url: local:.oauth2-sync/registry.db", f"url: {server.base_url}"
    ))
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    (step,) = [s for s in action["runs"]["steps"] if s.get("id") == "run"]
    temp = tmp_path / "runner-temp"
    install_from_checkout(temp)
    output = tmp_path / "github-output"
    env = clean_env(bin_dir) | server.env() | {
        "CI": "true", "RUNNER_TEMP": str(temp), "GITHUB_ACTION_PATH": str(ROOT),
        "GITHUB_OUTPUT": str(output), "OAUTH2_SYNC_INPUT_COMMAND": "apply",
        "OAUTH2_SYNC_INPUT_ALLOW_UNSAFE": "false",
    }
    process = subprocess.Popen(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=workspace, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:  # the plan, then the first client done
        if ": created (secret delivered to " in line:
            break
    process.send_signal(signal.SIGINT)
    rest, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 130, rest + stderr
    assert re.fullmatch(
        r"Interrupt received, stopping: no new writes; waiting for \d in flight\n", stderr
    ), stderr
    lines = rest.splitlines()
    assert re.fullmatch(r"\d+ not attempted: .+", lines[-2]), lines
    assert lines[-1].startswith("Apply interrupted: ")
    assert output.read_text() == "exit-code=130\n"


def test_the_component_job_runs_its_command_and_reports_it(tmp_path: Path, bin_dir: Path) -> None:
    """The component's own script, as a pipeline that only includes it gets it: drift
    as JUnit, its status and document in a dotenv report; drift (2) passes the job."""
    workspace = copy_examples(tmp_path / "repo")
    include = (
        "include:\n  - component: $CI_SERVER_FQDN/acme/tools/oauth2-sync/oauth2-sync@v"
        f"{__version__}\n    inputs: {{command: drift, stage: check, format: junit}}\n"
    )
    env = clean_env(bin_dir) | {"CI": "true", "GITLAB_CI": "true"}
    subprocess.run(["oauth2-sync", "apply", "--auto-approve"], cwd=workspace, env=env,
                   capture_output=True, check=True, timeout=TIMEOUT)
    quiet = run_gitlab_job(workspace, "oauth2-sync-drift", env, pipeline_text=include)
    assert quiet.status == 0, quiet.log
    assert (workspace / "oauth2-sync.env").read_text() == (
        "OAUTH2_SYNC_EXIT_CODE=0\nOAUTH2_SYNC_DOCUMENT=drift.xml\n"
    )
    assert (workspace / "drift.xml").read_text().count("<failure") == 0
    edit_local_client(workspace / ".oauth2-sync" / "registry.db", "acme-web-portal",
                      name="Renamed by hand")
    drifted = run_gitlab_job(workspace, "oauth2-sync-drift", env, pipeline_text=include)
    assert drifted.status == 0, drifted.log
    assert (workspace / "oauth2-sync.env").read_text() == (
        "OAUTH2_SYNC_EXIT_CODE=2\nOAUTH2_SYNC_DOCUMENT=drift.xml\n"
    )
    assert (workspace / "drift.xml").read_text().count("<failure") == 1


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"COMMAND": "destroy"},
         "command must be one of validate, plan, apply, drift, not 'destroy'"),
        ({"COMMAND": "apply", "FORMAT": "json"},
         "format: apply has no --format (its report goes to the log)"),
        ({"COMMAND": "plan", "ALLOW_UNSAFE": "true"},
         "allow-unsafe: only apply has --allow-unsafe, not plan"),
        ({"COMMAND": "apply", "ALLOW_UNSAFE": "yes"}, "allow_unsafe must be true or false, not 'yes'"),
        ({"COMMAND": "plan", "ARGS": "--target 'acme"}, "args: No closing quotation"),
    ],
)
def test_the_action_refuses_inputs_it_cannot_run_with(
    tmp_path: Path, bin_dir: Path, inputs: dict[str, str], message: str
) -> None:
    output = tmp_path / "github-output"
    env = clean_env(bin_dir) | {f"OAUTH2_SYNC_INPUT_{k}": v for k, v in inputs.items()}
    done = subprocess.run(
        [sys.executable, str(ROOT / "action" / "run_command.py"), "--outputs", str(output)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        1, "", f"Error: oauth2-sync action: {message}; check the step's inputs\n"
    )
    assert output.read_text() == "exit-code=1\n"


def test_the_action_never_writes_its_document_through_a_link(
    tmp_path: Path, bin_dir: Path
) -> None:
    # A pull request commits plan.md as a link to a file a later step would run.
    target = tmp_path / "later-step.sh"
    target.write_text("echo untouched\n")
    (tmp_path / "plan.md").symlink_to(target)
    output = tmp_path / "github-output"
    env = clean_env(bin_dir) | {"OAUTH2_SYNC_INPUT_COMMAND": "plan",
                                "OAUTH2_SYNC_INPUT_FORMAT": "markdown"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "action" / "run_command.py"), "--outputs", str(output)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )
    assert (done.returncode, done.stdout, target.read_text()) == (1, "", "echo untouched\n")
    assert done.stderr.startswith("Error: oauth2-sync action: document: cannot write plan.md: ")
    assert done.stderr.endswith(" (a link or a folder is refused); check the step's inputs\n")


# --- the CI files, statically -------------------------------------------------


def test_ci_files_call_only_commands_and_options_that_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(copy_examples(tmp_path / "repo"))
    used: dict[str, list[str]] = {}
    for where, argvs in action_invocations().items():
        for args in argvs:
            parse_with_click(args)
            used.setdefault(where, []).append(" ".join(args))
    for where, script in ci_scripts().items():
        for args in invocations(script):
            parse_with_click(args)
            used.setdefault(where.split(":")[0], []).append(" ".join(args))
    assert used == {
        "oauth2-sync-apply.yml": [
            "validate --format github", "apply --auto-approve --allow-unsafe",
            "rotate-secret -- ${client_ids[@]}", "export --list-created",
        ],
        "oauth2-sync-drift.yml": ["drift --format markdown", "drift --format junit"],
        "oauth2-sync-plan.yml": [
            "validate --format github", "plan --format markdown", "validate",
            "plan --out access-plan.json", "review-status --plan access-plan.json",
        ],
        "oauth2-sync-review.yml": [
            "validate", "plan --out access-plan.json", "review-status --plan access-plan.json",
        ],
        ".gitlab-ci.yml": [
            "validate", "plan --format markdown",
            "plan --out access-plan.json", "review-status --forge gitlab --plan access-plan.json",
            "validate",
            "apply --auto-approve --allow-unsafe", "apply --auto-approve",
            "rotate-secret -- $OAUTH2_SYNC_ROTATE",
            "export --list-created", "drift --format junit", "drift",
        ],
    }


def test_ci_files_are_wired_as_documented() -> None:
    plan, apply_, drift = (
        yaml.safe_load((WORKFLOWS / f"oauth2-sync-{n}.yml").read_text())
        for n in ("plan", "apply", "drift")
    )
    # PyYAML reads the key `on` as YAML 1.1's boolean true, as any YAML 1.1 loader would.
    assert plan[True] == {"pull_request": None}
    assert apply_[True]["push"] == {"branches": ["main"]}
    assert apply_[True]["workflow_dispatch"]["inputs"]["rotate"]["default"] == ""
    assert set(drift[True]) == {"schedule", "workflow_dispatch"}
    assert plan["permissions"] == {
        "contents": "read", "pull-requests": "write", "statuses": "write",
    }
    assert apply_["permissions"] == {"contents": "read", "pull-requests": "read"}
    assert drift["permissions"] == {"contents": "read", "issues": "write"}
    assert apply_["concurrency"] == {"group": "oauth2-sync-apply", "cancel-in-progress": False}
    assert apply_["jobs"]["apply"]["environment"] == "oauth2-sync-apply"
    read_only = {
        "OAUTH2_SYNC_CLIENT_ID": "${{ vars.OAUTH2_SYNC_PLAN_CLIENT_ID }}",
        "OAUTH2_SYNC_CLIENT_SECRET": "${{ secrets.OAUTH2_SYNC_PLAN_CLIENT_SECRET }}",
    }
    assert plan["jobs"]["plan"]["env"] == read_only
    assert drift["jobs"]["drift"]["env"] == read_only
    assert apply_["jobs"]["apply"]["env"]["OAUTH2_SYNC_CLIENT_SECRET"] == (
        "${{ secrets.OAUTH2_SYNC_APPLY_CLIENT_SECRET }}"
    )
    for document in (plan, apply_, drift):
        for job in document["jobs"].values():
            for step in job["steps"]:
                if "uses" in step:
                    # GitHub's own actions, or this repository's at the release's tag.
                    assert re.fullmatch(
                        rf"actions/[\w-]+@v\d+|YOUR-ORG/oauth2-sync@v{__version__}", step["uses"]
                    ), step["uses"]
                if "run" in step:
                    assert "${{" not in step["run"]  # expressions go through env:
                    assert "pip install" not in step["run"]  # the action installs
                if "secrets." in json.dumps(step.get("env", {})):
                    pytest.fail(f"a step-level secret: {step}")
    gitlab = yaml.safe_load(GITLAB_CI.read_text())
    assert "pip install" not in GITLAB_CI.read_text()  # the component installs
    assert "default" not in gitlab
    assert gitlab["oauth2-sync-apply"]["resource_group"] == "oauth2-sync-apply"
    assert gitlab["oauth2-sync-plan"]["rules"] == [
        {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}
    ]
    assert gitlab["oauth2-sync-drift"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    assert gitlab["oauth2-sync-drift"]["artifacts"]["reports"] == {"junit": "drift-junit.xml"}
    assert gitlab["oauth2-sync-plan"]["variables"]["OAUTH2_SYNC_CLIENT_SECRET"] == (
        "$OAUTH2_SYNC_PLAN_CLIENT_SECRET"
    )


def test_the_github_scripts_are_valid_javascript(tmp_path: Path) -> None:
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in job["steps"]:
                if str(step.get("uses", "")).startswith("actions/github-script@"):
                    source = tmp_path / "script.js"
                    source.write_text(
                        "async function run(github, context, core, require) {\n"
                        + step["with"]["script"] + "\n}\n"
                    )
                    done = subprocess.run(["node", "--check", str(source)], capture_output=True,
                                          text=True, timeout=TIMEOUT, check=False)
                    assert done.returncode == 0, f"{path.name}: {done.stderr}"


def test_codeowners_names_an_owner_for_every_team_folder() -> None:
    settings = load_settings(EXAMPLES / "oauth2-sync.yaml")
    rules = [
        line.split()
        for line in (EXAMPLES / "CODEOWNERS").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    patterns = {rule[0]: rule[1:] for rule in rules}
    assert patterns["*"] == ["@example-org/oauth2-admins"]
    for team in settings.teams:
        for path in team.paths:
            folder = "/" + path.split("*", 1)[0]
            assert patterns.get(folder) == [f"@example-org/{team.name}"], (team.name, folder)
    assert len(patterns) == 1 + sum(len(t.paths) for t in settings.teams)


# --- pre-commit hooks --------------------------------------------------------------


def test_pre_commit_hooks_run_as_pre_commit_runs_them(tmp_path: Path, bin_dir: Path) -> None:
    offered = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    hooks = {hook["id"]: hook for hook in offered}
    assert set(hooks) == {"oauth2-sync-validate", "oauth2-sync-fmt"}
    configured = yaml.safe_load((EXAMPLES / ".pre-commit-config.yaml").read_text())
    assert [h["id"] for r in configured["repos"] for h in r["hooks"]] == [
        "oauth2-sync-fmt", "oauth2-sync-validate",
    ]
    repo = copy_examples(tmp_path / "repo")
    # Every YAML file a commit may touch: client files, settings, CI files, the seed.
    staged = sorted(
        str(p.relative_to(repo)) for p in repo.rglob("*")
        if p.is_file() and re.search(hooks["oauth2-sync-fmt"]["files"], p.name)
    )
    assert ".gitlab-ci.yml" in staged and ".github/workflows/oauth2-sync-plan.yml" in staged
    unsorted = repo / "clients" / "payments" / "reporting.yaml"
    text = unsorted.read_text()
    unsorted.write_text(text.replace("scopes: [read, write]", "scopes: [write, read]"))
    for hook_id, hook in hooks.items():
        assert hook["language"] == "python"
        argv = shlex.split(hook["entry"])
        assert argv[0] == "oauth2-sync"
        parse_with_click(argv[1:])
        files = staged if hook.get("pass_filenames", True) else []
        done = subprocess.run([*argv, *files], cwd=repo, env=clean_env(bin_dir),
                              capture_output=True, text=True, timeout=TIMEOUT, check=False)
        assert done.returncode == 0, (hook_id, done.stdout, done.stderr)
    assert "scopes: [read, write]" in unsorted.read_text()  # fmt fixed it


# --- ci/store-secret ------------------------------------------------------------


def test_store_secret_is_the_command_sink_of_the_settings(tmp_path: Path, bin_dir: Path) -> None:
    repo = copy_examples(tmp_path / "repo")
    assert load_settings(repo / "oauth2-sync.yaml").secrets.command == (
        str(repo / "ci" / "store-secret"),
    )
    store = tmp_path / "store"
    env = clean_env(bin_dir) | {"OAUTH2_SYNC_SECRET_DIR": str(store)}
    done = subprocess.run(["oauth2-sync", "apply", "--auto-approve"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "acme-reporting: created (secret delivered to command ci/store-secret)" in done.stdout
    assert sorted(p.stem for p in store.iterdir()) == list(EXAMPLE_IDS)
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    for path in store.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        stored = json.loads(path.read_text())
        assert (stored["client_id"], stored["registry_client_id"]) == (path.stem, path.stem)
    assert not (repo / ".secrets").exists()


def test_store_secret_forwards_a_folder_and_keeps_what_it_could_not_store(
    tmp_path: Path, bin_dir: Path
) -> None:
    folder = tmp_path / ".secrets"
    folder.mkdir()
    for client_id in ("acme-a", "acme-b"):
        (folder / f"{client_id}.json").write_text(
            json.dumps({"client_id": client_id, "client_secret": f"secret-of-{client_id}"})
        )
    (folder / "acme-c.json").write_text(json.dumps({"client_id": "acme-x", "client_secret": "s"}))
    store = tmp_path / "store"
    env = clean_env(bin_dir) | {"OAUTH2_SYNC_SECRET_DIR": str(store)}
    done = store_secret(["--from", str(folder)], env)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"stored the secret of acme-a in {store}/acme-a.json",
        f"stored the secret of acme-b in {store}/acme-b.json",
    ]
    assert done.stderr.splitlines() == [
        f"store-secret: acme-c: {folder}/acme-c.json: holds the secret of acme-x, not of acme-c; "
        f"{folder}/acme-c.json is kept",
        "store-secret: 1 secret(s) not stored. If they are lost, issue new ones: "
        "oauth2-sync rotate-secret acme-c",
    ]
    assert sorted(p.name for p in folder.iterdir()) == ["acme-c.json"]
    # Files without registry_client_id (an older oauth2-sync): the registry used our ID.
    assert json.loads((store / "acme-b.json").read_text()) == {
        "client_id": "acme-b", "registry_client_id": "acme-b", "client_secret": "secret-of-acme-b",
    }


def test_store_secret_audit_names_the_clients_whose_secret_the_store_lacks(
    tmp_path: Path, bin_dir: Path
) -> None:
    store = tmp_path / "store"
    env = clean_env(bin_dir) | {"OAUTH2_SYNC_SECRET_DIR": str(store)}
    sent = {"client_id": "acme-a", "client_secret": "secret-of-acme-a"}
    assert store_secret([], env | {"CI": "true"}, json.dumps(sent)).returncode == 0
    done = store_secret(["--audit"], env, "acme-a\n\nacme-c\nacme-b\n")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines() == [
        f"store-secret: acme-b: no secret in {store}/acme-b.json (a run that stopped between "
        "creating it and storing its secret?)",
        f"store-secret: acme-c: no secret in {store}/acme-c.json (a run that stopped between "
        "creating it and storing its secret?)",
        "store-secret: 2 of 3 client(s) have no secret in the store. Unless their secrets "
        "are kept elsewhere, issue new ones: oauth2-sync rotate-secret acme-b acme-c",
    ]
    done = store_secret(["--audit"], env, "acme-a\n")
    assert (done.returncode, done.stdout, done.stderr) == (
        0, "the store holds a secret for each of the 1 client(s)\n", ""
    )
    done = store_secret(["--audit"], env, "../etc/passwd\n")
    assert (done.returncode, done.stderr) == (
        1, "store-secret: --audit: not a client ID: '../etc/passwd'\n"
    )


def test_store_secret_keeps_the_client_id_the_registry_issued(
    tmp_path: Path, bin_dir: Path
) -> None:
    store = tmp_path / "store"
    env = clean_env(bin_dir) | {"OAUTH2_SYNC_SECRET_DIR": str(store)}
    sent = {"client_id": "acme-a", "registry_client_id": "Xq3-server-chosen", "client_secret": "s"}
    done = store_secret([], env, json.dumps(sent))
    assert (done.returncode, done.stdout) == (0, f"stored the secret of acme-a in {store}/acme-a.json\n")
    assert json.loads((store / "acme-a.json").read_text()) == sent
    done = store_secret([], env, json.dumps(sent | {"registry_client_id": ""}))
    assert (done.returncode, done.stderr) == (
        1, "store-secret: stdin: registry_client_id of acme-a is empty or not a string\n"
    )


def test_store_secret_reports_vault_refusals_without_the_secret(bin_dir: Path) -> None:
    vault = Vault()
    vault.refuse = True
    payload = json.dumps({"client_id": "acme-a", "client_secret": "very-secret-value"})
    with stand_in(vault.handle) as url:
        env = clean_env(bin_dir) | {"OAUTH2_SYNC_SECRET_STORE": "vault", "VAULT_ADDR": url,
                                    "VAULT_TOKEN": vault.token}
        done = store_secret([], env, payload)
    assert done.returncode == 1
    assert done.stderr == (
        "store-secret: vault secret/oauth2-clients/acme-a: HTTP 403: permission denied\n"
    )
    assert "very-secret-value" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CI": "true"}, "store-secret: OAUTH2_SYNC_SECRET_STORE is not set (or is 'directory') "
         "on a CI runner: the secrets would be lost with the job's workspace. Set "
         "OAUTH2_SYNC_SECRET_STORE=vault, or OAUTH2_SYNC_SECRET_DIR to a folder that outlives "
         "the job"),
        ({"OAUTH2_SYNC_SECRET_STORE": "vault"},
         "store-secret: OAUTH2_SYNC_SECRET_STORE=vault needs VAULT_ADDR and VAULT_TOKEN"),
        ({"OAUTH2_SYNC_SECRET_STORE": "vault", "VAULT_ADDR": "http://vault.example:8200",
          "VAULT_TOKEN": "t"},
         "store-secret: refusing plain http to vault.example: VAULT_ADDR must be https "
         "(http only for loopback addresses)"),
        ({"OAUTH2_SYNC_SECRET_STORE": "s3"},
         "store-secret: OAUTH2_SYNC_SECRET_STORE must be 'directory' or 'vault', not 's3'"),
    ],
)
def test_store_secret_check_refuses_a_store_that_would_lose_secrets(
    bin_dir: Path, env: dict[str, str], message: str
) -> None:
    done = store_secret(["--check"], clean_env(bin_dir) | env)
    assert (done.returncode, done.stderr) == (1, message + "\n")


def test_gitlab_mr_note_refuses_to_send_its_token_in_clear(bin_dir: Path, tmp_path: Path) -> None:
    body = tmp_path / "plan.md"
    body.write_text("plan")
    env = clean_env(bin_dir) | {
        "CI_API_V4_URL": "http://gitlab.example/api/v4", "CI_PROJECT_ID": "42",
        "CI_MERGE_REQUEST_IID": "7", "OAUTH2_SYNC_GITLAB_TOKEN": "t",
    }
    done = subprocess.run([sys.executable, str(EXAMPLES / "ci" / "gitlab-mr-note"), str(body)],
                          env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert (done.returncode, done.stderr) == (
        1,
        "gitlab-mr-note: refusing plain http to gitlab.example: the token would travel in clear\n",
    )


def test_gitlab_unsafe_approved_refuses_to_send_its_token_in_clear(bin_dir: Path) -> None:
    env = clean_env(bin_dir) | {
        "CI_API_V4_URL": "http://gitlab.example/api/v4", "CI_PROJECT_ID": "42",
        "CI_COMMIT_SHA": "6" * 40, "OAUTH2_SYNC_GITLAB_TOKEN": "t",
    }
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "ci" / "gitlab-unsafe-approved")], env=env,
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        1,
        "gitlab-unsafe-approved: refusing plain http to gitlab.example: the token would "
        "travel in clear: not approved\n",
        "",
    )
