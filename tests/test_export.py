"""``export``: file layout, normal form, path safety, no overwrite, and the round trip
export -> plan showing no changes on the reference server over HTTP."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from support.configrepo import client, write_repo
from support.registry import RegistryServer, write_registry_settings

from oauth2_sync.cli import cli
from oauth2_sync.errors import UsageError
from oauth2_sync.export import (
    HEADER,
    ExportItem,
    ExportLine,
    ExportReport,
    creation_list,
    export,
    render_file,
    report_lines,
    schema_comment,
    select,
    target,
    write_clients,
)
from oauth2_sync.fmt import format_bytes
from oauth2_sync.loader import load_bytes
from oauth2_sync.model import Client
from oauth2_sync.registry import open_registry
from oauth2_sync.registry.local import LocalRegistry
from oauth2_sync.settings import Settings, Team, load_settings

SEED = Path(__file__).parents[1] / "examples" / "registry-seed.yaml"

EVERY_FIELD = (
    Client(
        "acme-mobile-app", "Acme mobile app", "mobile@acme.example", "acme",
        grant_types=("authorization_code", "refresh_token"),
        redirect_uris=("example.acme.app:/oauth2/callback", "http://127.0.0.1:8400/callback"),
        access_token_ttl=3600, refresh_token_ttl=30 * 86400,
    ),
    Client("acme-reporting", "Reporting service", "data-team@acme.example", "acme"),
    Client(
        "acme-web-portal", 'Société "Portail": oui', "portal@acme.example", "acme",
        scopes=("read", "write"), grant_types=("authorization_code",),
        redirect_uris=("https://portal.acme.example/cb",), access_token_ttl=43200,
    ),
    Client(
        "globex-etl", "123", "etl@globex.example", "globex",
        restrict_to_partner_users=False, grant_types=("password",), access_token_ttl=-1,
    ),
    Client(
        "globex-analytics", "null", "analytics@globex.example", "globex",
        scopes=("write",), grant_types=("implicit",),
        redirect_uris=("https://analytics.globex.example/callback",), access_token_ttl=90,
    ),
    Client(
        "initech-batch", "yes", "batch@initech.example", "initech",
        scopes=("read", "write"), access_token_ttl=7200, refresh_token_ttl=86401,
    ),
)


def settings_for(tmp_path: Path, **extra: object) -> Settings:
    return load_settings(write_repo(tmp_path, [], extra=extra))


# --- the file ----------------------------------------------------------------------------


def test_exported_file_text() -> None:
    text = render_file(EVERY_FIELD[0], "clients/acme/acme-mobile-app.yaml")
    assert text == (
        "# yaml-language-server: $schema=../../schemas/clients.schema.json\n"
        "# Exported by `oauth2-sync export`: this client as the registry held it.\n"
        "clients:\n"
        "  - client_id: acme-mobile-app\n"
        "    name: Acme mobile app\n"
        "    email: mobile@acme.example\n"
        "    partner: acme\n"
        "    restrict_to_partner_users: true\n"
        "    scopes: [read]\n"
        "    grant_types: [authorization_code, refresh_token]\n"
        "    redirect_uris:\n"
        "      - example.acme.app:/oauth2/callback\n"
        "      - http://127.0.0.1:8400/callback\n"
        "    access_token_ttl: 1h\n"
        "    refresh_token_ttl: 30d\n"
    )


@pytest.mark.parametrize("exported", EVERY_FIELD, ids=lambda c: c.client_id)
def test_exported_file_reads_back_as_the_same_client_in_normal_form(exported: Client) -> None:
    text = render_file(exported, "clients/x.yaml")
    doc = load_bytes(text.encode(), "x.yaml")
    assert Client.from_document(doc.data["clients"][0]) == exported
    assert not format_bytes(text.encode(), "x.yaml").changed


def test_exported_sets_are_sorted_whatever_the_registry_order() -> None:
    unsorted = client("acme-x", scopes=("write", "read"))
    assert "    scopes: [read, write]\n" in render_file(unsorted, "x.yaml")


@pytest.mark.parametrize(
    ("relative", "schema"),
    [
        ("acme-x.yaml", "schemas/clients.schema.json"),
        ("clients/acme/acme-x.yaml", "../../schemas/clients.schema.json"),
        ("teams/a/b/c/acme-x.yaml", "../../../../schemas/clients.schema.json"),
    ],
)
def test_the_schema_comment_climbs_back_to_the_output_folder(relative: str, schema: str) -> None:
    # As in the examples: the schema sits in schemas/ at the top of the config folder.
    assert schema_comment(relative) == f"# yaml-language-server: $schema={schema}\n"
    assert render_file(client("acme-x"), relative).startswith(schema_comment(relative) + HEADER)


# --- where files go ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["clients/acme/**"], "clients/acme/acme-x.yaml"),
        (["clients/acme/*.yaml"], "clients/acme/acme-x.yaml"),
        (["clients/acme/*.yml", "teams/acme/**"], "teams/acme/acme-x.yaml"),
        (["clients/acme/only.yaml"], None),
        (["../outside/**"], None),
    ],
)
def test_target_is_a_team_folder_that_clients_paths_matches(
    tmp_path: Path, paths: list[str], expected: str | None
) -> None:
    settings = settings_for(
        tmp_path, clients={"paths": ["clients/**/*.yaml", "teams/**/*.yaml"]},
    )
    # Set after loading: the settings refuse a '..' pattern themselves (outside-root),
    # and export must not write outside the folder even so.
    settings = settings._replace(teams=(Team("payments", tuple(paths), ("acme",)),))
    assert target(client("acme-x"), settings) == expected


def test_a_partner_of_two_teams_goes_to_the_first(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, teams={
        "one": {"paths": ["clients/one/**"], "partners": ["acme"]},
        "two": {"paths": ["clients/two/**"], "partners": ["acme", "globex"]},
    })
    assert target(client("acme-x"), settings) == "clients/one/acme-x.yaml"
    assert target(client("globex-x"), settings) == "clients/two/globex-x.yaml"


def test_select_filters_and_refuses_what_is_out_of_scope(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    held = [client("globex-b"), client("acme-a"), client("umbrella-u"), client("acme-c")]
    assert [c.client_id for c in select(held, settings)] == ["acme-a", "acme-c", "globex-b"]
    assert [c.client_id for c in select(held, settings, partners=["acme"])] == [
        "acme-a", "acme-c",
    ]
    assert [
        c.client_id
        for c in select(held, settings, partners=["acme"], client_ids=["acme-c", "globex-b"])
    ] == ["acme-c"]
    with pytest.raises(UsageError) as caught:
        select(held, settings, partners=["umbrella"])
    assert str(caught.value) == (
        "partner 'umbrella' is not in the managed scope: name it under a team's partners "
        "in the settings first"
    )
    with pytest.raises(UsageError) as caught:
        select(held, settings, client_ids=["acme-zz"])
    assert str(caught.value) == "--client-id acme-zz: the registry holds no such client"
    with pytest.raises(UsageError) as caught:
        select(held, settings, client_ids=["umbrella-u"])
    assert str(caught.value) == (
        "--client-id umbrella-u: its partner 'umbrella' is not in the managed scope"
    )


# --- safety ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "client_id",
    ["acme-../../../escape", "acme-a/b", "../acme-x", "Acme-X", "acme-x\n", "", "acme-" + "x" * 100],
)
def test_a_client_id_that_is_no_file_name_is_refused(tmp_path: Path, client_id: str) -> None:
    settings = settings_for(tmp_path / "repo")
    out = tmp_path / "out"
    report = write_clients([client("acme-a")._replace(client_id=client_id)], settings, out)
    assert report.items == (
        ExportItem(
            client_id, "acme", "refused",
            reason="the client ID is not a valid client ID, so it cannot name a file",
        ),
    )
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["oauth2-sync.yaml"]


def test_a_symbolic_link_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "repo")
    out = tmp_path / "out"
    outside = tmp_path / "outside"
    outside.mkdir()
    out.mkdir()
    (out / "clients").symlink_to(outside)
    report = write_clients([client("acme-a")], settings, out)
    assert report.items == (
        ExportItem(
            "acme-a", "acme", "refused", "clients/acme/acme-a.yaml",
            "the path leads out of the output folder",
        ),
    )
    assert list(outside.iterdir()) == []


def test_existing_files_are_kept_unless_forced(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "repo")
    out = tmp_path / "out"
    first = write_clients([client("acme-a")], settings, out)
    assert first.items == (ExportItem("acme-a", "acme", "written", "clients/acme/acme-a.yaml"),)
    path = out / "clients" / "acme" / "acme-a.yaml"
    path.write_text("# mine\n")
    again = write_clients([client("acme-a", name="New")], settings, out)
    assert again.items == (
        ExportItem(
            "acme-a", "acme", "exists", "clients/acme/acme-a.yaml",
            "the file exists (--force overwrites it)",
        ),
    )
    assert path.read_text() == "# mine\n"
    forced = write_clients([client("acme-a", name="New")], settings, out, force=True)
    assert forced.items[0].status == "overwritten"
    assert "    name: New\n" in path.read_text()
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_a_symbolic_link_at_the_file_is_never_followed(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "repo")
    out = tmp_path / "out"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    folder = out / "clients" / "acme"
    folder.mkdir(parents=True)
    (folder / "acme-a.yaml").symlink_to(victim)
    assert write_clients([client("acme-a")], settings, out).items[0].status == "exists"
    assert write_clients([client("acme-a")], settings, out, force=True).items[0].status == (
        "overwritten"
    )
    assert victim.read_text() == "precious\n"
    assert not (folder / "acme-a.yaml").is_symlink()


def test_declared_clients_are_skipped(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "repo")
    report = write_clients(
        [client("acme-a"), client("acme-b")], settings, tmp_path / "out",
        declared={"acme-a": "clients/acme/clients.yaml:2"},
    )
    assert report.items == (
        ExportItem("acme-a", "acme", "declared", reason="declared in clients/acme/clients.yaml:2"),
        ExportItem("acme-b", "acme", "written", "clients/acme/acme-b.yaml"),
    )
    assert report.failed == ()


# --- the round trip on the reference server ----------------------------------------------


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def server_repo(
    tmp_path: Path,
    start_registry_server: Callable[..., RegistryServer],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Path, RegistryServer]:
    """An empty config repo pointing at a fresh reference server that holds EVERY_FIELD."""
    server = start_registry_server()
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    root = tmp_path / "repo"
    write_registry_settings(root, server.base_url)
    with open_registry(load_settings(root / "oauth2-sync.yaml")) as registry:
        for c in EVERY_FIELD:
            registry.create_client(c)
    monkeypatch.chdir(root)
    return root, server


def test_export_then_plan_shows_no_changes(server_repo: tuple[Path, RegistryServer]) -> None:
    root, _ = server_repo
    code, out, err = run("plan")
    assert code == 0 and "No changes." in out  # nothing declared, prune off
    code, out, err = run("export")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "Wrote clients/acme/acme-mobile-app.yaml (acme-mobile-app)",
        "Wrote clients/acme/acme-reporting.yaml (acme-reporting)",
        "Wrote clients/acme/acme-web-portal.yaml (acme-web-portal)",
        "Wrote clients/globex/globex-analytics.yaml (globex-analytics)",
        "Wrote clients/globex/globex-etl.yaml (globex-etl)",
        "Wrote clients/initech/initech-batch.yaml (initech-batch)",
        "Exported 6 of 6 clients to .: 6 new, 0 overwritten, 0 already declared "
        "(skipped), 0 failed.",
    ]
    code, out, err = run("plan", "--prune")
    assert (code, err) == (0, "")
    assert "No changes. The registry matches the configuration.\n" in out
    assert run("drift")[0] == 0
    assert run("fmt", "--check") == (0, "6 files would be left unchanged.\n", "")
    assert run("validate")[0] == 0
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*.yaml"))
    assert files == [
        "clients/acme/acme-mobile-app.yaml", "clients/acme/acme-reporting.yaml",
        "clients/acme/acme-web-portal.yaml", "clients/globex/globex-analytics.yaml",
        "clients/globex/globex-etl.yaml", "clients/initech/initech-batch.yaml",
        "oauth2-sync.yaml",
    ]
    # The schema comment names the schema where the tutorial writes it.
    code, schema, _ = run("schema", "clients")
    assert code == 0
    (root / "schemas").mkdir()
    (root / "schemas" / "clients.schema.json").write_text(schema)
    for path in root.rglob("clients/**/*.yaml"):
        text = path.read_text()
        assert "secret" not in text.lower()
        assert yaml.safe_load(text)["clients"][0]["client_id"] == path.stem
        first = text.splitlines()[0]
        assert first == "# yaml-language-server: $schema=../../schemas/clients.schema.json"
        assert (path.parent / first.split("=", 1)[1]).resolve() == (
            root / "schemas" / "clients.schema.json"
        ).resolve()


def test_export_again_skips_declared_and_keeps_files(
    server_repo: tuple[Path, RegistryServer],
) -> None:
    root, _ = server_repo
    assert run("export", "--partner", "globex")[0] == 0
    code, out, _ = run("export", "--partner", "globex")
    assert code == 0
    assert out.splitlines()[-1] == (
        "Exported 0 of 2 clients to .: 0 new, 0 overwritten, 2 already declared "
        "(skipped), 0 failed."
    )
    code, out, err = run("export", "--client-id", "globex-etl", "--include-declared")
    assert code == 1
    assert err == (
        "Error: globex-etl (clients/globex/globex-etl.yaml): the file exists "
        "(--force overwrites it)\n"
    )
    code, out, _ = run(
        "export", "--client-id", "globex-etl", "--include-declared", "--force", "--out", "snap"
    )
    assert code == 0
    assert (root / "snap" / "clients" / "globex" / "globex-etl.yaml").exists()


def test_export_writes_no_secret_even_after_rotation(
    server_repo: tuple[Path, RegistryServer], tmp_path: Path
) -> None:
    root, _ = server_repo
    with open_registry(load_settings(root / "oauth2-sync.yaml")) as registry:
        secret = registry.rotate_secret("acme-reporting").reveal()
    assert run("export", "--out", str(tmp_path / "snapshot"))[0] == 0
    for path in (tmp_path / "snapshot").rglob("*"):
        if path.is_file():
            assert secret not in path.read_text()



# --- what export prints (mutation survivors, docs/development/testing.md) ----------------


REPORT = ExportReport(Path("out"), (
    ExportItem("acme-a", "acme", "written", "clients/acme/acme-a.yaml"),
    ExportItem("acme-b", "acme", "overwritten", "clients/acme/acme-b.yaml"),
    ExportItem("acme-c", "acme", "declared", reason="declared in clients/acme/c.yaml:2"),
    ExportItem("acme-d", "acme", "exists", "clients/acme/acme-d.yaml",
               "the file exists (--force overwrites it)"),
    ExportItem("Acme-E", "acme", "refused",
               reason="the client ID is not a valid client ID, so it cannot name a file"),
))
SUMMARY = ExportLine(
    "Exported 2 of 5 clients to out: 1 new, 1 overwritten, 1 already declared (skipped), "
    "2 failed."
)
FAILED = [
    ExportLine("Error: acme-d (clients/acme/acme-d.yaml): the file exists (--force overwrites "
               "it)", error=True),
    ExportLine("Error: Acme-E: the client ID is not a valid client ID, so it cannot name a file",
               error=True),
]
WRITTEN = [
    ExportLine("Wrote clients/acme/acme-a.yaml (acme-a)"),
    ExportLine("Overwrote clients/acme/acme-b.yaml (acme-b)"),
]


def test_export_prints_each_client_written_or_failed_then_the_summary() -> None:
    assert report_lines(REPORT) == [*WRITTEN, *FAILED, SUMMARY]


def test_export_verbose_also_names_each_client_skipped() -> None:
    skipped = ExportLine("Skipped acme-c: declared in clients/acme/c.yaml:2")
    assert report_lines(REPORT, verbose=1) == [*WRITTEN, skipped, *FAILED, SUMMARY]


def test_export_quiet_prints_the_failures_only() -> None:
    assert report_lines(REPORT, quiet=True) == FAILED


def test_forced_export_onto_a_folder_of_the_file_s_name_is_refused(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "repo")
    out = tmp_path / "out"
    (out / "clients" / "acme" / "acme-a.yaml").mkdir(parents=True)
    report = write_clients([client("acme-a")], settings, out, force=True)
    assert report.items == (
        ExportItem("acme-a", "acme", "refused", "clients/acme/acme-a.yaml",
                   "a folder has the file's name"),
    )
    assert sorted(p.name for p in (out / "clients" / "acme").iterdir()) == ["acme-a.yaml"]


def test_the_creation_list_names_each_managed_client_with_its_creation_time(
    tmp_path: Path,
) -> None:
    registry = LocalRegistry(tmp_path / "registry.db", SEED)
    made = {c: registry.create_client(client(c))[0].created_at
            for c in ("globex-b", "umbrella-u", "acme-a")}
    assert creation_list(settings_for(tmp_path / "repo"), registry) == [
        ("acme-a", made["acme-a"]), ("globex-b", made["globex-b"]),
    ]


def test_export_skips_declared_clients_and_keeps_existing_files_unless_told(
    tmp_path: Path,
) -> None:
    declared = client("acme-a")
    settings = load_settings(write_repo(tmp_path, [declared]))
    registry = LocalRegistry(tmp_path / "registry.db", SEED)
    for held in (declared, client("acme-b"), client("acme-c")):
        registry.create_client(held)
    kept = tmp_path / "clients" / "acme" / "acme-b.yaml"
    kept.write_text("precious\n")
    report = export(settings, registry)
    file = tmp_path / "clients" / "acme" / "clients.yaml"
    assert report.items == (
        ExportItem("acme-a", "acme", "declared", reason=f"declared in {file}:2"),
        ExportItem("acme-b", "acme", "exists", "clients/acme/acme-b.yaml",
                   "the file exists (--force overwrites it)"),
        ExportItem("acme-c", "acme", "written", "clients/acme/acme-c.yaml"),
    )
    assert kept.read_text() == "precious\n"
    forced = export(settings, registry, force=True, include_declared=True)
    assert [(i.client_id, i.status) for i in forced.items] == [
        ("acme-a", "written"), ("acme-b", "overwritten"), ("acme-c", "overwritten"),
    ]
    assert kept.read_text() == render_file(client("acme-b"), "clients/acme/acme-b.yaml")


@pytest.mark.parametrize("force", [False, True])
def test_exported_files_are_readable_by_all_writable_by_the_owner_only(
    tmp_path: Path, force: bool
) -> None:
    out = tmp_path / "out"
    previous = os.umask(0o002)  # a umask that lets group write: the mode must not follow it
    try:
        write_clients([client("acme-a")], settings_for(tmp_path / "repo"), out, force=force)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((out / "clients" / "acme" / "acme-a.yaml").stat().st_mode) == 0o644
