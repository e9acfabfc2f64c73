"""The safety verdict travels with the plan: `plan` says, in every format, that apply
will refuse a plan over the limits, and why (real `oauth2-sync` processes, real files,
the embedded `local:` registry)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from support.configrepo import client, write_repo

SEED = Path(__file__).parents[1] / "examples" / "registry-seed.yaml"
USERS = ("reporting", "billing-sync", "mobile-app", "web-portal", "ops-cli")
WARNING = (
    "Warning: apply will refuse this plan: creates+updates: 5 exceeds 3 (safety.max_changes). "
    "Raise the limit in the settings, or approve this plan with apply --allow-unsafe (in CI: "
    "the pull-request label oauth2-sync:allow-unsafe)"
)


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH2_SYNC_")}
    return subprocess.run(
        [sys.executable, "-m", "oauth2_sync", *args], cwd=root, env={**env, "NO_COLOR": "1"},
        capture_output=True, text=True, timeout=120, check=False,
    )


def unsafe_repo(root: Path) -> None:
    """Five creates against ``safety.max_changes: 3``."""
    write_repo(root, [client(f"acme-{user}") for user in USERS], extra={
        "registry": {"url": "local:.oauth2-sync/registry.db", "seed": str(SEED)},
        "safety": {"max_changes": 3},
    })


def test_plan_says_apply_will_refuse_it_in_every_format(tmp_path: Path) -> None:
    unsafe_repo(tmp_path)
    text = run(tmp_path, "plan")
    assert text.returncode == 2  # still a plan with changes
    assert text.stderr == ""
    assert text.stdout.endswith(
        f"\n    }}\n\n{WARNING}\n\nPlan: 5 to add, 0 to change, 0 to destroy.\n"
        "0 unchanged; 0 outside the managed scope (not touched).\n"
    )

    quiet = run(tmp_path, "plan", "-q")
    assert (quiet.returncode, quiet.stdout) == (2, "Plan: 5 to add, 0 to change, 0 to destroy.\n")
    assert quiet.stderr == WARNING + "\n"

    markdown = run(tmp_path, "plan", "--format", "markdown")
    assert markdown.returncode == 2
    assert markdown.stdout.startswith(
        "### oauth2-sync plan\n\n> [!CAUTION]\n> **Apply will refuse this plan**: it exceeds "
        "the safety limits of the settings.\n> - creates+updates: 5 exceeds 3 "
        "(safety.max_changes)\n>\n"
    )
    assert markdown.stderr == WARNING + "\n"

    document = run(tmp_path, "plan", "--format", "json", "--out", "plan.json")
    assert document.returncode == 2
    assert json.loads(document.stdout)["exceeded_limits"] == [
        {"what": "creates+updates", "figure": "5", "maximum": "3", "setting": "max_changes"},
    ]
    assert json.loads((tmp_path / "plan.json").read_text())["exceeded_limits"] == (
        json.loads(document.stdout)["exceeded_limits"]
    )

    # What the plan announced: apply refuses, and applies once approved.
    refused = run(tmp_path, "apply", "plan.json")
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == (
        "Error: the plan exceeds the safety limits: creates+updates: 5 exceeds 3 "
        "(safety.max_changes). Raise the limit in the settings, or pass --allow-unsafe for "
        "this run\n"
    )
    approved = run(tmp_path, "apply", "plan.json", "--allow-unsafe")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert approved.stdout.endswith("Apply complete: 5 created, 0 updated, 0 deleted.\n")


def test_apply_with_allow_unsafe_does_not_say_it_will_refuse(tmp_path: Path) -> None:
    unsafe_repo(tmp_path)
    refused = run(tmp_path, "apply", "--auto-approve")
    assert refused.returncode == 1
    assert f"\n{WARNING}\n\nPlan: 5 to add" in refused.stdout  # shown, then refused
    approved = run(tmp_path, "apply", "--auto-approve", "--allow-unsafe")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert "refuse" not in approved.stdout
    assert approved.stderr == (
        "Warning: safety limits exceeded, allowed by --allow-unsafe: "
        "creates+updates: 5 exceeds 3 (safety.max_changes)\n"
    )


def test_a_plan_within_the_limits_says_nothing_about_them(tmp_path: Path) -> None:
    unsafe_repo(tmp_path)
    write_repo(tmp_path, [client("acme-reporting")], extra={
        "registry": {"url": "local:.oauth2-sync/registry.db", "seed": str(SEED)},
        "safety": {"max_changes": 3},
    })
    planned = run(tmp_path, "plan", "--format", "json")
    assert (planned.returncode, planned.stderr) == (2, "")
    assert "exceeded_limits" not in json.loads(planned.stdout)
    assert "refuse" not in run(tmp_path, "plan").stdout
