"""The repository is a boundary; files are never skipped without a word; the settings
file is found as git finds its configuration. The real CLI, real links, real folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[1] / "examples"
OUTSIDE_CLIENT = (
    "clients:\n  - client_id: acme-outsider\n    name: Outsider\n"
    "    email: x@acme.example\n    partner: acme\n"
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the examples (the configuration repository) and, beside it, files that
    are not part of it."""
    root = tmp_path / "repo"
    shutil.copytree(
        EXAMPLES, root, ignore=shutil.ignore_patterns(".oauth2-sync", ".secrets", "*.json")
    )
    (root / ".git").mkdir()  # the top of the repository, as a clone has it
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text(OUTSIDE_CLIENT)
    (outside / "folder").mkdir()
    (outside / "folder" / "more.yaml").write_text(OUTSIDE_CLIENT)
    return root


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH2_SYNC_")}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "oauth2_sync", *args], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_links_leading_outside_the_repository_are_not_followed(repo: Path) -> None:
    outside = repo.parent / "outside"
    (repo / "clients/payments/evil.yaml").symlink_to(outside / "secret.yaml")
    (repo / "clients/payments/linked").symlink_to(outside / "folder")
    # A link inside the repository is still followed.
    (repo / "clients/payments/alias.yaml").symlink_to(repo / "clients/payments/apps.yaml")
    # `**` never enters a linked folder; a `*` would, so a pattern names one.
    settings = repo / "oauth2-sync.yaml"
    settings.write_text(
        settings.read_text().replace(
            "    - clients/**/*.yaml\n", "    - clients/**/*.yaml\n    - clients/*/*/*.yaml\n"
        )
    )
    result = run(repo, "validate", "-q")
    assert result.returncode == 1
    real = os.path.realpath(outside)
    assert result.stdout.splitlines() == [
        # apps.yaml's two clients, declared again through the link inside the repository.
        "clients/payments/apps.yaml:5:16: error: [duplicate-client-id] client_id "
        "'acme-mobile-app' is also declared at clients/payments/alias.yaml:5:16",
        "clients/payments/apps.yaml:17:16: error: [duplicate-client-id] client_id "
        "'acme-web-portal' is also declared at clients/payments/alias.yaml:17:16",
        f"oauth2-sync.yaml:11:7: error: [outside-root] 'clients/payments/evil.yaml' is a link "
        f"to '{real}/secret.yaml', outside this file's folder: not followed",
        f"oauth2-sync.yaml:12:7: error: [outside-root] 'clients/payments/linked' is a link "
        f"to '{real}/folder', outside this file's folder: not followed",
        "5 files, 12 clients: 4 errors, 3 warnings.",
    ]
    assert "acme-outsider" not in result.stdout + result.stderr


@pytest.mark.parametrize("fmt", ["github", "json"])
def test_an_outside_file_never_reaches_annotations(repo: Path, fmt: str) -> None:
    # Before: the top-level keys of an arbitrary file became pull-request annotations.
    (repo.parent / "outside" / "notes.yaml").write_text("password_of_the_day: hunter2\n")
    (repo / "clients/payments/notes.yaml").symlink_to(repo.parent / "outside" / "notes.yaml")
    result = run(repo, "validate", "--format", fmt)
    assert result.returncode == 1
    assert "password_of_the_day" not in result.stdout
    assert "outside-root" in result.stdout


def test_plan_refuses_a_link_outside_the_repository(repo: Path) -> None:
    (repo / "clients/payments/evil.yaml").symlink_to(repo.parent / "outside" / "secret.yaml")
    result = run(repo, "plan")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"oauth2-sync.yaml:11:7: error: [outside-root] 'clients/payments/evil.yaml' is a link "
        f"to '{os.path.realpath(repo.parent)}/outside/secret.yaml', outside this file's "
        "folder: not followed",
    ]
    assert "acme-outsider" not in result.stdout


def test_a_yaml_file_clients_paths_leaves_out_is_a_warning(repo: Path) -> None:
    (repo / "clients/payments/extra.yml").write_text(OUTSIDE_CLIENT)
    (repo / "clients/payments/.hidden").mkdir()
    (repo / "clients/payments/.hidden/skipped.yml").write_text(OUTSIDE_CLIENT)
    (repo / "clients/payments/notes.txt").write_text("not YAML\n")
    result = run(repo, "validate", "-q")
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["4 files, 12 clients: 0 errors, 4 warnings."]
    result = run(repo, "validate")
    assert (
        "clients/payments/extra.yml:1:1: warning: [unmatched-file] this YAML file under a "
        "team's folder is not matched by clients.paths (clients/**/*.yaml): it is not read"
    ) in result.stdout.splitlines()
    assert "skipped.yml" not in result.stdout


def test_the_settings_file_is_found_from_a_subfolder(repo: Path) -> None:
    (repo / "clients/payments/reporting.yaml").write_text(
        (repo / "clients/payments/reporting.yaml")
        .read_text()
        .replace("scopes: [read]", "scopes: [raed]")
    )
    result = run(repo / "clients" / "payments", "validate", "-q")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        # Named from where the command runs, as the paths to give it are.
        "../../clients/payments/reporting.yaml:8:14: error: [schema] clients[0].scopes[0]: "
        "'raed' is not one of read, write; did you mean 'read'?",
        "4 files, 11 clients: 1 error, 3 warnings.",
    ]
    assert result.stderr == ""


def test_no_settings_file_up_to_the_repository_top_is_one_line(repo: Path) -> None:
    # A settings file above the repository's top (.git) is not used.
    shutil.copy(repo / "oauth2-sync.yaml", repo.parent / "oauth2-sync.yaml")
    (repo / "oauth2-sync.yaml").unlink()
    result = run(repo / "clients", "validate")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Error: no oauth2-sync.yaml in {os.path.realpath(repo / 'clients')} or the folders "
        f"above it (up to {os.path.realpath(repo)}); run oauth2-sync inside the configuration "
        "repository or pass --config FILE",
    ]


def test_config_given_is_used_exactly(repo: Path) -> None:
    # No search when --config is given: a missing file is that file's error.
    result = run(repo / "clients", "--config", "oauth2-sync.yaml", "validate")
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == (
        "oauth2-sync.yaml:1:1: error: [file] No such file or directory"
    )


def test_a_deleted_working_folder_is_one_line(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH2_SYNC_")}
    result = subprocess.run(
        ["sh", "-c", f'cd "{gone}" && rmdir "{gone}" && exec "$0" -m oauth2_sync validate',
         sys.executable],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "Error: cannot read the current folder (No such file or directory); run oauth2-sync "
        "from an existing folder or pass --config FILE",
    ]
