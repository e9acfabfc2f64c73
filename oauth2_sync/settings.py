"""``oauth2-sync.yaml``: loading, schema check and the typed settings."""

from __future__ import annotations

import functools
import itertools
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from oauth2_sync import durations, schemacheck, settingscheck
from oauth2_sync.errors import InputError, UsageError
from oauth2_sync.fast.glob import WILDCARD, glob_files
from oauth2_sync.fast.prefix import base, relative_fast, relative_reference
from oauth2_sync.loader import load_file
from oauth2_sync.records import NamedTuple
from oauth2_sync.registry.capabilities import REFERENCE, Capabilities, declared

DEFAULT_CONFIG = "oauth2-sync.yaml"
DriftMode = Literal["enforce", "warn", "ignore"]


class AuthSettings(NamedTuple):
    """Where the registry credentials come from (names of variables and files only)."""

    grant_type: Literal["client_credentials", "password"] = "client_credentials"
    token_url: str | None = None
    client_id_env: str = "OAUTH2_SYNC_CLIENT_ID"
    client_secret_env: str = "OAUTH2_SYNC_CLIENT_SECRET"
    client_secret_file: Path | None = None
    username_env: str = "OAUTH2_SYNC_USERNAME"
    password_env: str = "OAUTH2_SYNC_PASSWORD"
    initial_access_token_env: str = "OAUTH2_SYNC_INITIAL_ACCESS_TOKEN"
    initial_access_token_command: tuple[str, ...] | None = None
    """Run before each create for a fresh initial access token (its stdout), if set."""


class RegistrySettings(NamedTuple):
    """The registry to manage and how to talk to it."""

    url: str
    auth: AuthSettings = AuthSettings()
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    request_timeout: float = 60.0
    deadline: float = 3600.0
    retries: int = 5
    page_size: int = 5000  # the /v1 API's largest page
    max_clients: int = 200_000
    ca_bundle: Path | None = None
    seed: Path | None = None
    state_file: Path | None = None
    capabilities: Capabilities = REFERENCE
    """What the registry can hold as the settings know it (``registry.capabilities``
    for rfc7592+, the reference registry's otherwise): ``validate`` checks against it."""


class Team(NamedTuple):
    """A team: the client files it owns and the partners whose clients it manages."""

    name: str
    paths: tuple[str, ...]
    partners: tuple[str, ...]

    def owns(self, relative: str) -> bool:
        """Whether the team owns a file, given its POSIX path relative to the config."""
        return any(_glob_regex(p).match(relative) for p in self.paths)


class Policy(NamedTuple):
    """Validation tightened by the organisation."""

    errors: frozenset[str] = frozenset()
    max_access_token_ttl: int | None = None
    max_refresh_token_ttl: int | None = None
    allowed_grant_types: frozenset[str] | None = None


class Safety(NamedTuple):
    """Limits above which apply refuses before any write."""

    max_changes: int = 100
    max_changes_percent: float = 30.0
    max_deletes: int = 5
    max_deletes_percent: float = 10.0
    min_managed_clients: int = 10


class SecretSink(NamedTuple):
    """Where new client secrets go: a directory or a command (exactly one, or none)."""

    directory: Path | None = None
    command: tuple[str, ...] | None = None

    @property
    def configured(self) -> bool:
        return self.directory is not None or self.command is not None


class Approver(NamedTuple):
    """One entry of ``review.widening_approvers``: a member of ``team`` must approve the
    widening changes of ``for_teams`` (every team when empty)."""

    team: str
    for_teams: tuple[str, ...] = ()

    def covers(self, owners: Iterable[str]) -> bool:
        """Whether this approval is needed for a change owned by ``owners``."""
        return not self.for_teams or any(o in self.for_teams for o in owners)


class Settings(NamedTuple):
    """Everything ``oauth2-sync.yaml`` says, with paths resolved against its folder."""

    path: Path
    root: Path
    registry: RegistrySettings
    client_paths: tuple[str, ...]
    teams: tuple[Team, ...]
    policy: Policy = Policy()
    safety: Safety = Safety()
    prune: bool = False
    secrets: SecretSink = SecretSink()
    drift_fields: Mapping[str, DriftMode] = MappingProxyType({})
    widening_approvers: tuple[Approver, ...] = ()
    """Who must approve widening changes (``review``); empty: nothing is enforced."""

    @property
    def managed_partners(self) -> frozenset[str]:
        """The managed scope: every partner some team names."""
        return frozenset(p for team in self.teams for p in team.partners)

    @property
    def read_patterns(self) -> tuple[str, ...]:
        """What plan and drift read, as globs relative to ``root``: this file and the
        client paths (asked about by ``gitinfo.git_uncommitted``)."""
        return (self.path.name, *self.client_paths)

    def teams_owning(self, file: Path | str) -> tuple[Team, ...]:
        """The teams whose paths include ``file``."""
        relative = self.relative(file)
        if relative is None:
            return ()
        return tuple(t for t in self.teams if t.owns(relative))

    def relative(self, file: Path | str) -> str | None:
        """``file`` relative to the config folder, POSIX style; ``None`` if outside it."""
        # Files found by discovery are under root as written: the text settles most.
        fast = relative_fast(self.root, file)
        return fast if fast is not None else relative_reference(self.root, file)

    def client_files(self) -> list[Path]:
        """The client files the settings name, sorted, each once."""
        return [Path(name) for name in self.client_file_names()]

    def client_file_names(self) -> list[str]:
        """``client_files`` as text, as ``str(Path)`` writes it (validate's hot path makes
        no ``Path`` per file: building, sorting and printing them was 5% of a plan)."""
        return self.discover().files

    def discover(self) -> Discovery:
        """The client files ``clients.paths`` finds, and the links it refused to follow.

        The configuration's folder is a boundary: a link (to a file or a folder) whose
        target resolves outside it is not followed, so no file outside the repository
        is read, planned or applied. Only links are resolved (``os.scandir`` knows which
        entries are links without a system call).
        """
        found: set[str] = set()
        boundary = _Boundary(self.root)
        for index, pattern in enumerate(self.client_paths):
            boundary.pattern = index
            found.update(glob_files(base(self.root), pattern.split("/"), boundary.follows))
        # Path order (part by part): "/" sorts before every character a name may hold.
        return Discovery(
            sorted(found, key=lambda name: name.replace("/", "\0")), boundary.refused
        )

    def team_folders(self) -> list[str]:
        """The folders the teams' path patterns start with (``clients/acme`` for
        ``clients/acme/**``), outermost only, as ``str(Path)`` writes them."""
        folders: set[str] = set()
        for team in self.teams:
            for pattern in team.paths:
                fixed = [
                    part
                    for part in itertools.takewhile(
                        lambda part: not WILDCARD.search(part), pattern.split("/")[:-1]
                    )
                    if part not in ("", ".")
                ]
                folders.add(os.path.join(base(self.root), *fixed))
        return [
            f for f in sorted(folders)
            if not any(f.startswith(os.path.join(o, "")) for o in folders if o != f)
        ]


class Discovery(NamedTuple):
    """What ``clients.paths`` finds."""

    files: list[str]
    """The client files, sorted, as ``str(Path)`` writes them."""
    outside: dict[str, tuple[int, str]]
    """Each link not followed: its name, the index of the pattern that reached it and
    where it resolves (outside the configuration's folder)."""


class _Boundary:
    """Decides whether discovery follows a link: only to inside the configuration's folder."""

    def __init__(self, root: Path) -> None:
        self._root = str(root)
        self._inside: str | None = None
        self.pattern = 0
        self.refused: dict[str, tuple[int, str]] = {}

    def follows(self, link: str) -> bool:
        """Whether to follow ``link``; if not, it is noted with its target."""
        if self._inside is None:  # resolved once, and only when there is a link
            self._inside = os.path.join(os.path.realpath(self._root), "")
        target = os.path.realpath(link)
        if os.path.join(target, "").startswith(self._inside):
            return True
        self.refused.setdefault(link, (self.pattern, target))
        return False


def find_settings(start: Path) -> Path:
    """``oauth2-sync.yaml`` in ``start`` or the nearest folder above it, as git, ruff and
    pre-commit find their configuration; the search stops at the top of a git
    repository (a folder holding ``.git``), so a file above the repository is not used.

    The path is relative to ``start`` (``oauth2-sync.yaml``, ``../oauth2-sync.yaml``),
    so file names in messages read from where the command runs.
    """
    folder = start
    while True:
        # os.path's checks answer False on any OSError (an unreadable folder above).
        candidate = folder / DEFAULT_CONFIG
        if os.path.isfile(candidate):
            return Path(os.path.relpath(candidate, start))
        if os.path.lexists(folder / ".git") or folder.parent == folder:
            break
        folder = folder.parent
    raise UsageError(
        f"no {DEFAULT_CONFIG} in {start} or the folders above it (up to {folder}); "
        "run oauth2-sync inside the configuration repository or pass --config FILE"
    )


def load_settings(path: Path) -> Settings:
    """Load and check ``oauth2-sync.yaml``; raises ``InputError`` with every finding."""
    doc = load_file(path)
    problems = schemacheck.check("settings", doc) or settingscheck.problems(doc)
    if problems:
        raise InputError(problems)
    return _build(path, doc.data)


def _build(path: Path, data: dict[str, Any]) -> Settings:
    root = path.parent
    reg = data["registry"]
    auth = reg.get("auth", {})
    policy = data.get("policy", {})
    safety = data.get("safety", {})
    secrets = data.get("secrets", {})
    return Settings(
        path=path,
        root=root,
        registry=RegistrySettings(
            url=_resolve_local(reg["url"], root),
            auth=AuthSettings(
                grant_type=auth.get("grant_type", "client_credentials"),
                token_url=auth.get("token_url"),
                client_id_env=auth.get("client_id_env", "OAUTH2_SYNC_CLIENT_ID"),
                client_secret_env=auth.get("client_secret_env", "OAUTH2_SYNC_CLIENT_SECRET"),
                client_secret_file=_path(root, auth.get("client_secret_file")),
                username_env=auth.get("username_env", "OAUTH2_SYNC_USERNAME"),
                password_env=auth.get("password_env", "OAUTH2_SYNC_PASSWORD"),
                initial_access_token_env=auth.get(
                    "initial_access_token_env", "OAUTH2_SYNC_INITIAL_ACCESS_TOKEN"
                ),
                initial_access_token_command=(
                    _command(root, auth["initial_access_token_command"])
                    if "initial_access_token_command" in auth else None
                ),
            ),
            connect_timeout=float(reg.get("connect_timeout", 5)),
            read_timeout=float(reg.get("read_timeout", 30)),
            request_timeout=float(reg.get("request_timeout", 60)),
            deadline=float(reg.get("deadline", 3600)),
            retries=reg.get("retries", 5),
            page_size=reg.get("page_size", 5000),
            max_clients=reg.get("max_clients", 200_000),
            ca_bundle=_path(root, reg.get("ca_bundle")),
            seed=_path(root, reg.get("seed")),
            state_file=_path(root, reg.get("state_file", ".oauth2-sync/rfc7592-state.json")),
            capabilities=declared(reg["url"], reg.get("capabilities")),
        ),
        client_paths=tuple(data["clients"]["paths"]),
        teams=tuple(
            Team(name, tuple(team["paths"]), tuple(team["partners"]))
            for name, team in data["teams"].items()
        ),
        policy=Policy(
            errors=frozenset(policy.get("errors", ())),
            max_access_token_ttl=durations.parse(policy.get("max_access_token_ttl")),
            max_refresh_token_ttl=durations.parse(policy.get("max_refresh_token_ttl")),
            allowed_grant_types=(
                frozenset(policy["allowed_grant_types"])
                if "allowed_grant_types" in policy
                else None
            ),
        ),
        safety=Safety(
            max_changes=safety.get("max_changes", 100),
            max_changes_percent=float(safety.get("max_changes_percent", 30)),
            max_deletes=safety.get("max_deletes", 5),
            max_deletes_percent=float(safety.get("max_deletes_percent", 10)),
            min_managed_clients=safety.get("min_managed_clients", 10),
        ),
        prune=data.get("prune", False),
        secrets=SecretSink(
            directory=_path(root, secrets.get("directory")),
            command=_command(root, secrets["command"]) if "command" in secrets else None,
        ),
        drift_fields=dict(data.get("drift", {}).get("fields", {})),
        widening_approvers=tuple(
            Approver(entry["team"], tuple(entry.get("for_teams", ())))
            for entry in data.get("review", {}).get("widening_approvers", ())
        ),
    )


def _path(root: Path, value: str | None) -> Path | None:
    return None if value is None else root / value


def _command(root: Path, argv: list[str]) -> tuple[str, ...]:
    # `./ci/store-secret` means next to the settings file, like every other path here;
    # a bare name (`vault`) is looked up on PATH. It stays a path: `Path(".") / "./sink.py"`
    # is the bare name `sink.py`, which subprocess would look up on PATH.
    program = argv[0]
    if "/" in program and not Path(program).is_absolute():
        program = str(root / program)
        if "/" not in program:
            program = f"./{program}"
    return (program, *argv[1:])


def _resolve_local(url: str, root: Path) -> str:
    # A local store path is relative to the settings file, like every other path here.
    if url.startswith("local:"):
        target = Path(url[len("local:") :])
        return f"local:{target if target.is_absolute() else root / target}"
    return url


@functools.cache
@functools.lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    # Cached: every file asks every team (``Team.owns``); building the expression
    # character by character each time cost 3% of validating 10,000 clients (#14).
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")
