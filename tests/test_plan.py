"""Building, saving and loading plans (desired clients from real files, hand-built registry)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.configrepo import client, write_repo

from oauth2_sync import clock, gitinfo, plandoc
from oauth2_sync import plan as planning
from oauth2_sync.diff import FieldChange
from oauth2_sync.errors import InputError, RegistryError, UsageError
from oauth2_sync.model import Client
from oauth2_sync.plan import Change, Plan, build_plan
from oauth2_sync.plandoc import load, save, to_dict
from oauth2_sync.registry.base import Partner, RegistryState, RemoteClient, Unreachable
from oauth2_sync.registry.local import LocalRegistry
from oauth2_sync.render import text as render_text
from oauth2_sync.settings import Settings, load_settings
from oauth2_sync.validation import DesiredClient, load_desired

SEED = Path(__file__).parents[1] / "examples" / "registry-seed.yaml"
PARTNERS = (
    Partner(1, "acme", "Acme", ("reporting", "billing", "old", "portal")),
    Partner(2, "globex", "Globex", ("etl",)),
    Partner(3, "umbrella", "Umbrella", ("lab",)),
)
REPORTING = client("acme-reporting", access_token_ttl=43200)
BILLING = client("acme-billing", scopes=("read", "write"))
ETL = client("globex-etl")


def setup(
    tmp_path: Path, desired: Sequence[Client], **extra: object
) -> tuple[Settings, tuple[DesiredClient, ...]]:
    settings = load_settings(write_repo(tmp_path, desired, extra=extra))
    return settings, load_desired(settings)


def state(*clients: Client, partners: Sequence[Partner] = PARTNERS) -> RegistryState:
    remote = tuple(RemoteClient(c, f'W/"{i + 1}"') for i, c in enumerate(clients))
    return RegistryState("local:/registry.db", tuple(partners), remote)


def test_everything_is_created_against_an_empty_registry(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [REPORTING, ETL, BILLING])
    plan = build_plan(desired, state(), settings, created_at="2024-01-01T00:00:00Z")
    assert [(c.action, c.client_id) for c in plan.changes] == [
        ("create", "acme-billing"), ("create", "acme-reporting"), ("create", "globex-etl"),
    ]
    assert plan.changes[0] == Change(
        "create", "acme-billing", after=BILLING, file=plan.changes[0].file, line=2
    )
    assert plan.changes[0].file is not None
    assert plan.changes[0].file.endswith("clients/acme/clients.yaml")
    assert plan.changes[2].line == 2
    assert tuple(plan.summary) == (3, 0, 0, 0, 0, 0, 0)
    assert plan.has_changes


def test_matching_clients_are_counted_and_unmanaged_ones_only_counted(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [REPORTING, ETL])
    lab = client("umbrella-lab")
    plan = build_plan(desired, state(REPORTING, ETL, lab), settings)
    assert plan.changes == ()
    assert not plan.has_changes
    assert (plan.no_op, plan.unmanaged, plan.managed) == (2, 1, 2)
    assert plan.versions == (
        ("acme-reporting", 'W/"1"'), ("globex-etl", 'W/"2"'), ("umbrella-lab", 'W/"3"'),
    )


def test_an_update_lists_each_changed_field_and_the_version_read(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [REPORTING])
    registry_side = REPORTING._replace(email="old@acme.example", access_token_ttl=None)
    plan = build_plan(desired, state(registry_side), settings)
    (change,) = plan.changes
    assert change.action == "update"
    assert change.version == 'W/"1"'
    assert change.before == registry_side
    assert change.after == REPORTING
    assert change.fields == (
        FieldChange("email", "old@acme.example", "team@acme.example"),
        FieldChange("access_token_ttl", None, 43200, effective_unchanged=True),
    )
    assert change.file == str(tmp_path / "clients" / "acme" / "clients.yaml")
    assert change.line == 2


def test_prune_is_off_by_default_and_deletes_only_managed_clients(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [REPORTING])
    old, lab = client("acme-old"), client("umbrella-lab")
    registry = state(REPORTING, old, lab)
    assert build_plan(desired, registry, settings).changes == ()
    pruned = build_plan(desired, registry, settings, prune=True)
    assert pruned.changes == (Change("delete", "acme-old", before=old, version='W/"2"'),)
    assert pruned.prune
    assert (pruned.managed, pruned.unmanaged) == (2, 1)


def test_prune_in_the_settings_is_honoured_and_the_flag_can_turn_it_off(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [REPORTING], prune=True)
    registry = state(REPORTING, client("acme-old"))
    assert [c.action for c in build_plan(desired, registry, settings).changes] == ["delete"]
    assert build_plan(desired, registry, settings, prune=False).changes == ()


def test_targets_limit_the_plan(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [REPORTING, ETL, BILLING])
    plan = build_plan(
        desired, state(client("acme-old")), settings, targets=["globex-etl", "acme-old"],
        prune=True,
    )
    assert [(c.action, c.client_id) for c in plan.changes] == [
        ("delete", "acme-old"), ("create", "globex-etl"),
    ]
    assert plan.targets == ("acme-old", "globex-etl")


def test_a_target_that_names_no_client_is_refused(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [REPORTING])
    with pytest.raises(UsageError) as caught:
        build_plan(desired, state(), settings, targets=["acme-nope"])
    assert str(caught.value) == "--target acme-nope matches no client in the files or the registry"


def test_online_checks_name_file_and_line(tmp_path: Path) -> None:
    stranger = client("acme-stranger")
    settings, desired = setup(tmp_path, [REPORTING, stranger, ETL])
    partners = (PARTNERS[0],)
    with pytest.raises(InputError) as caught:
        build_plan(desired, state(partners=partners), settings)
    shown = [f"{d.line}:{d.column}: [{d.rule}] {d.message}" for d in caught.value.diagnostics]
    assert shown == [
        "15:14: [user-unknown] 'stranger' is not a user of partner 'acme' "
        "(required by restrict_to_partner_users)",
        "5:12: [partner-unknown] partner 'globex' does not exist in the registry",
    ]
    assert caught.value.diagnostics[0].file.endswith("clients/acme/clients.yaml")


def test_the_user_check_is_skipped_when_unrestricted_or_users_are_unknown(
    tmp_path: Path,
) -> None:
    open_client = client("acme-stranger", restrict_to_partner_users=False)
    settings, desired = setup(tmp_path, [open_client, client("globex-someone")])
    unknown_users = (PARTNERS[0], Partner(2, "globex", "Globex", None))
    plan = build_plan(desired, state(partners=unknown_users), settings)
    assert [c.action for c in plan.changes] == ["create", "create"]


def test_a_client_id_held_by_an_unmanaged_partner_is_refused(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [REPORTING])
    hijacked = REPORTING._replace(partner="umbrella")
    with pytest.raises(InputError) as caught:
        build_plan(desired, state(hijacked), settings)
    (refused,) = caught.value.diagnostics
    assert (refused.line, refused.column, refused.message) == (
        2, 14,
        "the registry holds 'acme-reporting' under partner 'umbrella', outside the managed scope",
    )  # at the client_id's value


def _acme_unsupported(c: Client) -> list[str]:
    return [f"{c.client_id}: grant type password is not offered"] if c.partner == "acme" else []


def test_clients_the_registry_cannot_represent_are_left_out_with_an_error(
    tmp_path: Path,
) -> None:
    settings, desired = setup(tmp_path, [REPORTING, ETL])
    made = build_plan(desired, state(), settings, unsupported=_acme_unsupported)
    assert [(c.action, c.client_id) for c in made.changes] == [("create", "globex-etl")]
    (only,) = made.errors
    assert (only.line, only.column, only.severity, only.rule, only.message) == (
        2, 3, "error", "registry-unsupported", "acme-reporting: grant type password is not offered",
    )


def test_a_client_left_out_is_neither_updated_nor_pruned(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [REPORTING, ETL])
    held = REPORTING._replace(name="changed by hand")
    made = build_plan(
        desired, state(held, ETL), settings, prune=True, unsupported=_acme_unsupported
    )
    assert made.changes == ()
    assert (made.no_op, made.managed, len(made.errors)) == (1, 2, 1)


def test_other_online_errors_stop_the_plan_and_name_the_left_out_too(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [REPORTING, ETL])
    hijacked = ETL._replace(partner="umbrella")
    with pytest.raises(InputError) as caught:
        build_plan(desired, state(hijacked), settings, unsupported=_acme_unsupported)
    assert [d.rule for d in caught.value.diagnostics] == [
        "registry-unsupported", "client-unmanaged",
    ]


def test_a_plan_with_errors_saves_and_loads_back_equal(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [REPORTING, ETL])
    made = build_plan(
        desired, state(), settings, unsupported=_acme_unsupported,
        created_at="2024-01-01T00:00:00Z",
    )
    save(made, tmp_path / "plan.json")
    assert load(tmp_path / "plan.json") == made
    assert to_dict(made)["errors"] == [
        {
            "file": made.errors[0].file, "line": 2, "column": 3,
            "rule": "registry-unsupported",
            "message": "acme-reporting: grant type password is not offered",
        }
    ]


def sample_plan(tmp_path: Path) -> Plan:
    settings, desired = setup(tmp_path, [REPORTING, ETL, BILLING])
    registry_side = BILLING._replace(redirect_uris=(), scopes=("read",))
    return build_plan(
        desired, state(registry_side, client("acme-old"), client("umbrella-lab")), settings,
        prune=True, commit="0123abcd", created_at="2024-01-01T00:00:00Z",
    )


def test_without_prune_undeclared_managed_clients_are_counted_not_deleted(
    tmp_path: Path,
) -> None:
    settings, desired = setup(tmp_path, [REPORTING])
    made = build_plan(
        desired, state(REPORTING, client("acme-old"), client("umbrella-lab")), settings,
        prune=False,
    )
    assert (made.changes, made.no_op, made.undeclared, made.unmanaged) == ((), 1, 1, 1)
    assert to_dict(made)["summary"]["undeclared"] == 1
    assert render_text.counts_line(made) == (
        "1 unchanged; 1 declared by no file (kept: prune is off); "
        "1 outside the managed scope (not touched)."
    )
    pruned = build_plan(
        desired, state(REPORTING, client("acme-old"), client("umbrella-lab")), settings,
        prune=True,
    )
    assert [(c.action, c.client_id) for c in pruned.changes] == [("delete", "acme-old")]
    assert pruned.undeclared == 0


def test_a_saved_plan_loads_back_equal(tmp_path: Path) -> None:
    plan = sample_plan(tmp_path / "repo")
    path = tmp_path / "plan.json"
    plandoc.save(plan, path)
    assert plandoc.load(path) == plan
    document = json.loads(path.read_text())
    assert document["format_version"] == planning.FORMAT_VERSION
    assert document["summary"] == {
        "create": 2, "update": 1, "delete": 1, "no_op": 0, "unmanaged": 1, "managed": 2,
        "undeclared": 0,
    }
    assert document["versions"] == {
        "acme-billing": 'W/"1"', "acme-old": 'W/"2"', "umbrella-lab": 'W/"3"',
    }
    assert [sorted(p.name for p in tmp_path.iterdir())] == [["plan.json", "repo"]]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format_version=99),
         "format_version 99 is not supported (this oauth2-sync reads 3)"),
        (lambda d: d.update(format_version=1),
         "format_version 1 records no digests of the configuration, so it cannot be "
         "re-checked before apply; make the plan again with this oauth2-sync"),
        (lambda d: d.update(format_version=2),
         "format_version 2 records no access review of its changes, so a reviewer may not "
         "have seen which widen access; make the plan again with this oauth2-sync"),
        (lambda d: d.update(uncommitted="clients/a.yaml"), "uncommitted must be a list"),
        (lambda d: d.update(files=None), "files must be an object"),
        (lambda d: d["changes"][0].update(action="recreate"),
         "changes[0].action must be one of create, update, delete"),
        (lambda d: d["changes"][0].update(after=None),
         "changes[0]: a update needs before and after"),
        (lambda d: d["changes"][1].update(version=None),
         "changes[1]: a delete needs the version it was planned against"),
        (lambda d: d["changes"][2]["after"].update(scopes="read"),
         "changes[2].after.scopes must be a list"),
        (lambda d: d["changes"][2]["after"].pop("email"),
         "changes[2].after must have exactly the fields client_id, name, email, partner, "
         "restrict_to_partner_users, scopes, grant_types, redirect_uris, access_token_ttl, "
         "refresh_token_ttl"),
        (lambda d: d["changes"][2]["after"].update(client_id="acme-other"),
         "changes[2]: client_id does not match its clients"),
        (lambda d: d.update(versions=[]), "versions must be an object"),
    ],
)
def test_a_malformed_plan_file_is_refused_naming_the_problem(
    tmp_path: Path, mutate: object, message: str
) -> None:
    path = tmp_path / "plan.json"
    plandoc.save(sample_plan(tmp_path / "repo"), path)
    document = json.loads(path.read_text())
    assert callable(mutate)
    mutate(document)
    path.write_text(json.dumps(document))
    with pytest.raises(UsageError) as caught:
        plandoc.load(path)
    assert str(caught.value) == f"{path}: not a valid oauth2-sync plan file: {message}"


def test_a_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text("clients: []\n")
    with pytest.raises(UsageError) as caught:
        plandoc.load(path)
    assert str(caught.value) == f"{path}: not an oauth2-sync plan file (not JSON)"


def test_field_changes_in_a_plan_file_are_recomputed_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    plan = sample_plan(tmp_path / "repo")
    plandoc.save(plan, path)
    document = json.loads(path.read_text())
    document["changes"][0]["fields"] = []
    path.write_text(json.dumps(document))
    assert plandoc.load(path).changes[0].fields == plan.changes[0].fields


def test_git_commit_is_read_from_the_config_repository(tmp_path: Path) -> None:
    assert gitinfo.git_commit(tmp_path) is None
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
           "PATH": "/usr/bin:/bin"}
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, env=env)
    (tmp_path / "f").write_text("x")
    subprocess.run(["git", "-C", str(tmp_path), "add", "f"], check=True, env=env)
    subprocess.run(["git", "-C", str(tmp_path), "commit", "-qm", "x"], check=True, env=env)
    head = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"], check=True, capture_output=True,
        text=True,
    ).stdout.strip()
    assert gitinfo.git_commit(tmp_path) == head
    assert len(head) == 40
    # make_plan records it: what ties a saved plan to the configuration it came from.
    settings = load_settings(write_repo(tmp_path, [REPORTING]))
    made = planning.make_plan(settings, LocalRegistry(tmp_path / "registry.db", SEED))
    assert made.commit == head


def test_a_plan_saved_through_a_link_replaces_the_file_it_leads_to(tmp_path: Path) -> None:
    plan = sample_plan(tmp_path / "repo")
    (tmp_path / "saved.json").write_text("old\n")
    (tmp_path / "plan.json").symlink_to("saved.json")
    plandoc.save(plan, tmp_path / "plan.json")
    assert (tmp_path / "plan.json").is_symlink()
    assert plandoc.load(tmp_path / "saved.json") == plan


def test_a_plan_is_never_saved_over_a_fifo_or_a_device(tmp_path: Path) -> None:
    fifo = tmp_path / "plan.fifo"
    os.mkfifo(fifo)
    for path, kind in ((fifo, "a FIFO"), (Path("/dev/null"), "a character device")):
        with pytest.raises(UsageError) as caught:
            plandoc.save(sample_plan(tmp_path / "repo"), path)
        assert str(caught.value) == (
            f"{path}: cannot write the plan file: it is {kind}, and --out writes only "
            "regular files; choose a file name"
        )
    assert fifo.is_fifo()
    assert Path("/dev/null").is_char_device()


def test_a_client_the_registry_refused_to_show_is_left_out_with_its_reason(
    tmp_path: Path,
) -> None:
    settings, desired = setup(
        tmp_path, [REPORTING, ETL],
        registry={"url": "rfc7592+http://127.0.0.1:9/reg", "state_file": "state.json"},
    )
    refused = RegistryState(
        "rfc7592+http://127.0.0.1:9/reg", PARTNERS, (RemoteClient(ETL, "v1"),),
        (Unreachable("acme-reporting", "refused: adopt or forget acme-reporting"),
         Unreachable("acme-orphan", "refused: adopt or forget acme-orphan")),
    )
    plan = build_plan(desired, refused, settings, created_at="2024-01-01T00:00:00Z")
    # Not created again (it may still exist), the others planned; the undeclared one is
    # not looked at without prune.
    assert plan.changes == ()
    assert [(e.rule, e.line, e.column, e.message) for e in plan.errors] == [
        ("registry-unreachable", 2, 3, "refused: adopt or forget acme-reporting"),
    ]
    assert plan.errors[0].file.endswith("clients/acme/clients.yaml")
    pruned = build_plan(desired, refused, settings, prune=True)
    assert [(e.file, e.line, e.message) for e in pruned.errors] == [
        (plan.errors[0].file, 2, "refused: adopt or forget acme-reporting"),
        ("state.json", 1, "refused: adopt or forget acme-orphan"),
    ]
    assert pruned.changes == ()


class _NoAcme(LocalRegistry):
    """A registry that cannot hold acme's clients."""

    def unsupported(self, client: Client) -> list[str]:
        return _acme_unsupported(client)


def test_make_plan_asks_the_registry_what_it_cannot_hold_and_digests_the_files(
    tmp_path: Path,
) -> None:
    mobile = client("acme-mobile-app")  # a user of acme in the seed, as is reporting
    settings = load_settings(write_repo(tmp_path, [REPORTING, mobile, ETL]))
    made = planning.make_plan(settings, _NoAcme(tmp_path / "registry.db", SEED))
    assert [(c.action, c.client_id) for c in made.changes] == [("create", "globex-etl")]
    assert [d.rule for d in made.errors] == ["registry-unsupported"] * 2

    def sha256(relative: str) -> str:
        return hashlib.sha256((tmp_path / relative).read_bytes()).hexdigest()

    # One digest per file (acme's holds two clients), named from the settings' folder.
    assert made.settings_sha256 == sha256("oauth2-sync.yaml")
    assert made.files == tuple(
        (name, sha256(name))
        for name in ("clients/acme/clients.yaml", "clients/globex/clients.yaml")
    )


def test_a_settings_file_gone_before_its_digest_is_refused(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [REPORTING])
    settings.path.unlink()
    with pytest.raises(UsageError) as caught:
        planning.config_digests(settings, desired)
    assert str(caught.value) == (
        f"{settings.path}: cannot read the settings file again: No such file or directory; "
        "check that it was not moved while oauth2-sync ran"
    )


def test_counts_go_on_past_unmanaged_clients_and_every_undeclared_one_counts(
    tmp_path: Path,
) -> None:
    settings, desired = setup(tmp_path, [ETL])
    held = state(client("umbrella-lab"), client("acme-old"), client("acme-older"), ETL)
    made = build_plan(desired, held, settings)
    assert (made.managed, made.unmanaged, made.undeclared, made.no_op) == (3, 1, 2, 1)


def test_the_plan_carries_its_commit_and_time_given_or_from_the_clock(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [ETL])
    given = build_plan(desired, state(), settings, commit="c0ffee", created_at="2024-01-01T00:00:00Z")
    assert (given.commit, given.created_at) == ("c0ffee", "2024-01-01T00:00:00Z")
    with clock.use(lambda: datetime(2026, 1, 31, 12, 0, 0, tzinfo=UTC)):
        made = build_plan(desired, state(), settings)
    assert (made.commit, made.created_at) == (None, "2026-01-31T12:00:00Z")


def test_the_plan_carries_the_verdict_of_the_safety_limits(tmp_path: Path) -> None:
    settings, desired = setup(tmp_path, [REPORTING, ETL], safety={"max_changes": 1})
    made = build_plan(desired, state(), settings)
    assert [str(limit) for limit in made.exceeded] == [
        "creates+updates: 2 exceeds 1 (safety.max_changes)"
    ]


class _ReadElsewhere(LocalRegistry):
    """The local store read the way the HTTP adapters are: in the background thread.

    It notes which thread read it, and ``list_clients`` can be held until ``release``
    is set, or made to fail with ``failure``.
    """

    reads_in_background = True

    def __init__(self, path: Path, seed: Path | None = None) -> None:
        super().__init__(path, seed)
        self.readers: list[str] = []
        self.release = threading.Event()
        self.release.set()
        self.failure: RegistryError | None = None

    def list_partners(self) -> list[Partner]:
        self.readers.append(threading.current_thread().name)
        return super().list_partners()

    def list_clients(self) -> list[RemoteClient]:
        assert self.release.wait(timeout=30)
        if self.failure is not None:
            raise self.failure
        return super().list_clients()


def test_an_http_registry_is_read_in_the_background_and_gives_the_same_plan(
    tmp_path: Path,
) -> None:
    settings = load_settings(write_repo(tmp_path, [REPORTING, ETL], extra={"registry": {
        "url": "local:.oauth2-sync/registry.db", "seed": str(SEED)}}))
    in_caller = LocalRegistry.from_settings(settings)
    elsewhere = _ReadElsewhere(Path(settings.registry.url[len("local:"):]))
    with in_caller, elsewhere:
        assert not in_caller.reads_in_background
        first = planning.make_plan(settings, in_caller, digests=False)
        second = planning.make_plan(settings, elsewhere, digests=False)
    assert elsewhere.readers == ["oauth2-sync-registry"]
    assert second._replace(created_at=first.created_at) == first
    assert [c.action for c in first.changes] == ["create", "create"]


def test_an_error_of_the_background_read_is_raised_by_make_plan(tmp_path: Path) -> None:
    settings = load_settings(write_repo(tmp_path, [ETL]))
    registry = _ReadElsewhere(Path(settings.registry.url[len("local:"):]))
    registry.failure = RegistryError("listing clients: the registry answered 503")
    with registry, pytest.raises(RegistryError) as caught:
        planning.make_plan(settings, registry)
    assert caught.value is registry.failure


def test_a_file_error_is_reported_without_waiting_for_the_registry(tmp_path: Path) -> None:
    settings = load_settings(write_repo(tmp_path, [ETL]))
    (tmp_path / "clients" / "globex" / "clients.yaml").write_text(
        "clients:\n  - client_id: globex-etl\n    name: ETL\n    email: etl@globex.example\n"
        "    partner: [not, a, string]\n"
    )
    registry = _ReadElsewhere(Path(settings.registry.url[len("local:"):]))
    registry.release.clear()  # the registry's answer never comes until the end
    try:
        with registry, pytest.raises(InputError) as caught:
            planning.make_plan(settings, registry)
        assert not registry.release.is_set()  # the error came while the read still waited
        assert [str(d) for d in caught.value.diagnostics] == [
            f"{tmp_path}/clients/globex/clients.yaml:5:14: error: [schema] clients[0].partner: must be a "
            "partner subdomain: lower-case letters, digits and inner '-' (got ['not', 'a', "
            "'string'])"
        ]
    finally:
        registry.release.set()
