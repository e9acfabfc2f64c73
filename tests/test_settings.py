"""settings.py: finding the client files the settings name."""

from __future__ import annotations

from pathlib import Path

import pytest

from oauth2_sync.errors import InputError
from oauth2_sync.settings import Settings, load_settings

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Files at several depths, hidden ones, a folder named like a file, links, a link loop."""
    for name in (
        "clients/top.yaml", "clients/top.yml", "clients/.hidden.yaml", "clients/a/one.yaml",
        "clients/a/b/two.yaml", "clients/.dot/three.yaml", "clients/[x]/bracket.yaml",
        "outside/linked.yaml", "clients/a/notes.txt",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("clients: []\n")
    (tmp_path / "clients/folder.yaml").mkdir()
    (tmp_path / "clients/link").symlink_to(tmp_path / "outside")
    (tmp_path / "clients/a/loop").symlink_to(tmp_path / "clients")
    (tmp_path / "clients/file-link.yaml").symlink_to(tmp_path / "outside/linked.yaml")
    (tmp_path / "clients/dangling.yaml").symlink_to(tmp_path / "nowhere.yaml")
    (tmp_path / "clients/self.yaml").symlink_to(tmp_path / "clients/self.yaml")
    (tmp_path / "clients/a/self-folder").symlink_to(tmp_path / "clients/a/self-folder")
    return tmp_path


@pytest.mark.parametrize(
    "pattern",
    [
        "clients/**/*.yaml", "clients/*.yaml", "clients/*", "clients/**", "**/*.y*ml",
        "clients/*/*.yaml", "clients/a/one.yaml", "./clients//*.yaml", "clients/[a.]*/*.yaml",
        "clients/link/*.yaml", "clients/**/link/*.yaml", "clients/a/loop/*.yaml",
        "**/**/*.yaml", "missing/*.yaml", "clients/top.yaml/*", "clients/?op.yaml",
        "clients/[[]x]/*.yaml", "clients/folder.yaml",
    ],
)
def test_client_files_finds_what_path_glob_finds(tree: Path, pattern: str) -> None:
    settings = load_settings(EXAMPLES / "oauth2-sync.yaml")._replace(
        root=tree, client_paths=(pattern,)
    )
    expected = sorted(
        {p for p in tree.glob(pattern) if p.is_file()}, key=lambda p: p.parts
    )
    assert settings.client_files() == expected


def test_client_files_are_sorted_and_each_once(tree: Path) -> None:
    settings: Settings = load_settings(EXAMPLES / "oauth2-sync.yaml")._replace(
        root=tree,
        client_paths=("clients/**/*.yaml", "clients/*.yaml", "clients/a/one.yaml"),
    )
    assert [p.relative_to(tree).as_posix() for p in settings.client_files()] == [
        "clients/.dot/three.yaml", "clients/.hidden.yaml", "clients/[x]/bracket.yaml",
        "clients/a/b/two.yaml", "clients/a/one.yaml", "clients/file-link.yaml",
        "clients/top.yaml",
    ]


@pytest.mark.parametrize("root", ["absolute", "relative", "working-directory"])
def test_client_file_names_are_written_as_str_of_path_writes_them(
    tree: Path, root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = {"absolute": tree, "relative": Path(tree.name), "working-directory": Path(".")}[root]
    monkeypatch.chdir(tree if root == "working-directory" else tree.parent)
    settings = load_settings(EXAMPLES / "oauth2-sync.yaml")._replace(
        root=base,
        client_paths=("clients/**/*.yaml", "./clients//top.yml", "clients/a/../*.yaml"),
    )
    names = settings.client_file_names()
    expected = sorted(
        {
            p for pattern in settings.client_paths
            for p in base.glob(pattern.replace("//", "/")) if p.is_file()
        },
        key=lambda p: p.parts,
    )
    assert names == [str(p) for p in expected]
    assert len(names) == 11
    # Each is owned as its Path would be.
    assert [settings.relative(n) for n in names] == [settings.relative(p) for p in expected]


def test_an_absolute_path_pattern_is_an_error_at_its_place(tmp_path: Path) -> None:
    settings = tmp_path / "oauth2-sync.yaml"
    settings.write_text(
        "registry:\n  url: local:registry.db\n"
        "clients:\n  paths: [/srv/clients/**/*.yaml]\n"
        "teams:\n  acme:\n    paths: [clients/**, /srv/acme/**]\n    partners: [acme]\n"
    )
    with pytest.raises(InputError) as caught:
        load_settings(settings)
    assert [str(d).split(":", 1)[1] for d in caught.value.diagnostics] == [
        "4:11: error: [settings] path pattern '/srv/clients/**/*.yaml' is absolute: "
        "patterns are relative to this file",
        "7:25: error: [settings] path pattern '/srv/acme/**' is absolute: "
        "patterns are relative to this file",
    ]


def test_paths_leaving_the_folder_are_errors_at_their_place(tmp_path: Path) -> None:
    settings = tmp_path / "oauth2-sync.yaml"
    settings.write_text(
        "registry:\n  url: local:registry.db\n  state_file: ../state.json\n"
        "clients:\n  paths: [clients/**/*.yaml, clients/../../etc/*.yaml]\n"
        "teams:\n  acme:\n    paths: [clients/**, ../acme/**]\n    partners: [acme]\n"
        "secrets:\n  directory: /srv/secrets\n"
    )
    with pytest.raises(InputError) as caught:
        load_settings(settings)
    assert [str(d).split(":", 1)[1] for d in caught.value.diagnostics] == [
        "3:15: error: [outside-root] registry.state_file '../state.json' has a '..' segment: "
        "paths stay in this file's folder",
        "5:30: error: [outside-root] path pattern 'clients/../../etc/*.yaml' has a '..' "
        "segment: paths stay in this file's folder",
        "8:25: error: [outside-root] path pattern '../acme/**' has a '..' segment: "
        "paths stay in this file's folder",
        "11:14: error: [outside-root] secrets.directory '/srv/secrets' is absolute: "
        "paths are relative to this file and stay in its folder",
    ]


def test_for_teams_naming_no_team_is_an_error_at_its_place(tmp_path: Path) -> None:
    # A typo would make the approval apply to no change: the review would pass unseen.
    settings = tmp_path / "oauth2-sync.yaml"
    settings.write_text(
        "registry:\n  url: local:registry.db\n"
        "clients:\n  paths: [clients/**/*.yaml]\n"
        "teams:\n  payments:\n    paths: [clients/payments/**]\n    partners: [acme]\n"
        "  identity:\n    paths: [clients/identity/**]\n    partners: [globex]\n"
        "review:\n  widening_approvers:\n"
        "    - team: example-org/security\n      for_teams: [paymnts, identity, billing]\n"
        "    - team: example-org/platform\n"
    )
    with pytest.raises(InputError) as caught:
        load_settings(settings)
    assert [str(d).split(":", 1)[1] for d in caught.value.diagnostics] == [
        "15:19: error: [settings] for_teams names 'paymnts', which is not a team of this "
        "file (did you mean 'payments'?)",
        "15:38: error: [settings] for_teams names 'billing', which is not a team of this "
        "file (teams: identity, payments)",
    ]
    settings.write_text(settings.read_text().replace("paymnts, identity, billing", "payments"))
    (approver, everyone) = load_settings(settings).widening_approvers
    assert (approver.for_teams, everyone.for_teams) == (("payments",), ())


@pytest.mark.parametrize(("written", "loaded"), [
    ("[./ci/mint, --lifetime, '300']", ("{root}/ci/mint", "--lifetime", "300")),
    ("[canaille, jwt, registration]", ("canaille", "jwt", "registration")),
])
def test_the_initial_access_token_command_is_resolved_like_the_sink_command(
    tmp_path: Path, written: str, loaded: tuple[str, ...]
) -> None:
    settings = tmp_path / "oauth2-sync.yaml"
    settings.write_text(
        "registry:\n  url: rfc7592+http://127.0.0.1:5000/oauth/register\n"
        f"  auth:\n    initial_access_token_command: {written}\n"
        "clients:\n  paths: [clients/**/*.yaml]\n"
        "teams:\n  acme:\n    paths: [clients/**]\n    partners: [acme]\n"
    )
    command = load_settings(settings).registry.auth.initial_access_token_command
    assert command == tuple(part.format(root=tmp_path) for part in loaded)


def test_without_an_initial_access_token_command_none_is_run() -> None:
    settings = load_settings(EXAMPLES / "oauth2-sync.yaml")
    assert settings.registry.auth.initial_access_token_command is None


def test_an_empty_initial_access_token_command_is_an_error_at_its_place(tmp_path: Path) -> None:
    settings = tmp_path / "oauth2-sync.yaml"
    settings.write_text(
        "registry:\n  url: rfc7592+http://127.0.0.1:5000/oauth/register\n"
        "  auth:\n    initial_access_token_command: []\n"
        "clients:\n  paths: [clients/**/*.yaml]\n"
        "teams:\n  acme:\n    paths: [clients/**]\n    partners: [acme]\n"
    )
    with pytest.raises(InputError) as caught:
        load_settings(settings)
    assert [str(d).split(":", 1)[1] for d in caught.value.diagnostics] == [
        "4:35: error: [schema] registry.auth.initial_access_token_command: must not be empty"
    ]
