"""``oauth2-sync.yaml``: loading, schema check and the typed settings."""

from __future__ import annotations

import fnmatch
import functools
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from oauth2_sync import durations, schemacheck
from oauth2_sync.errors import Diagnostic, InputError
from oauth2_sync.loader import DataPath, Document, load_file

DEFAULT_CONFIG = "oauth2-sync.yaml"
DriftMode = Literal["enforce", "warn", "ignore"]


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """Where the registry credentials come from (names of variables and files only)."""

    grant_type: Literal["client_credentials", "password"] = "client_credentials"
    token_url: str | None = None
    client_id_env: str = "OAUTH2_SYNC_CLIENT_ID"
    client_secret_env: str = "OAUTH2_SYNC_CLIENT_SECRET"
    client_secret_file: Path | None = None
    username_env: str = "OAUTH2_SYNC_USERNAME"
    password_env: str = "OAUTH2_SYNC_PASSWORD"
    initial_access_token_env: str = "OAUTH2_SYNC_INITIAL_ACCESS_TOKEN"


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    """The registry to manage and how to talk to it."""

    url: str
    auth: AuthSettings = field(default_factory=AuthSettings)
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    request_timeout: float = 60.0
    deadline: float = 3600.0
    retries: int = 5
    page_size: int = 500
    max_clients: int = 200_000
    ca_bundle: Path | None = None
    seed: Path | None = None
    state_file: Path | None = None


@dataclass(frozen=True, slots=True)
class Team:
    """A team: the client files it owns and the partners whose clients it manages."""

    name: str
    paths: tuple[str, ...]
    partners: tuple[str, ...]

    def owns(self, relative: str) -> bool:
        """Whether the team owns a file, given its POSIX path relative to the config."""
        return any(_glob_regex(p).match(relative) for p in self.paths)


@dataclass(frozen=True, slots=True)
class Policy:
    """Validation tightened by the organisation."""

    errors: frozenset[str] = frozenset()
    max_access_token_ttl: int | None = None
    max_refresh_token_ttl: int | None = None
    allowed_grant_types: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Safety:
    """Limits above which apply refuses before any write."""

    max_changes: int = 100
    max_changes_percent: float = 30.0
    max_deletes: int = 5
    max_deletes_percent: float = 10.0
    min_managed_clients: int = 10


@dataclass(frozen=True, slots=True)
class SecretSink:
    """Where new client secrets go: a directory or a command (exactly one, or none)."""

    directory: Path | None = None
    command: tuple[str, ...] | None = None

    @property
    def configured(self) -> bool:
        return self.directory is not None or self.command is not None


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything ``oauth2-sync.yaml`` says, with paths resolved against its folder."""

    path: Path
    root: Path
    registry: RegistrySettings
    client_paths: tuple[str, ...]
    teams: tuple[Team, ...]
    policy: Policy = field(default_factory=Policy)
    safety: Safety = field(default_factory=Safety)
    prune: bool = False
    secrets: SecretSink = field(default_factory=SecretSink)
    drift_fields: Mapping[str, DriftMode] = field(default_factory=dict)

    @property
    def managed_partners(self) -> frozenset[str]:
        """The managed scope: every partner some team names."""
        return frozenset(p for team in self.teams for p in team.partners)

    def teams_owning(self, file: Path | str) -> tuple[Team, ...]:
        """The teams whose paths include ``file``."""
        relative = self.relative(file)
        if relative is None:
            return ()
        return tuple(t for t in self.teams if t.owns(relative))

    def relative(self, file: Path | str) -> str | None:
        """``file`` relative to the config folder, POSIX style; ``None`` if outside it."""
        # Files found by client_files() are under root as written: comparing the text or
        # the parts is enough (and a tenth of what building a Path with relative_to costs).
        if isinstance(file, str):
            prefix = os.path.join(_base(self.root), "")
            if file.startswith(prefix) and len(file) > len(prefix) and (
                prefix or not os.path.isabs(file)
            ):
                return file[len(prefix) :]
            file = Path(file)
        parts, base = file.parts, self.root.parts
        if len(parts) > len(base) and parts[: len(base)] == base and (
            base or not file.is_absolute()
        ):
            return "/".join(parts[len(base) :])
        try:
            return file.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return None

    def client_files(self) -> list[Path]:
        """The client files the settings name, sorted, each once."""
        return [Path(name) for name in self.client_file_names()]

    def client_file_names(self) -> list[str]:
        """``client_files`` as text, as ``str(Path)`` writes it (validate's hot path makes
        no ``Path`` per file: building, sorting and printing them was 5% of a plan)."""
        found: set[str] = set()
        for pattern in self.client_paths:
            found.update(_glob_files(_base(self.root), pattern.split("/")))
        # Path order (part by part): "/" sorts before every character a name may hold.
        return sorted(found, key=lambda name: name.replace("/", "\0"))


def _base(root: Path) -> str:
    """``root`` as ``str(root / name)`` starts: nothing for ``.`` (no ``./``)."""
    text = str(root)
    return "" if text == "." else text


def _glob_files(directory: str, parts: list[str]) -> Iterator[str]:
    """The files under ``directory`` matching the pattern ``parts``, as ``Path.glob`` finds them.

    ``directory`` is ``""`` for the working directory; the names found are written as
    ``str(Path)`` would write them (no ``./``).

    Written out because ``Path.glob`` plus ``is_file`` built three ``Path`` objects and
    made a ``stat`` call per file, a tenth of a 10,000-file plan; ``os.scandir`` knows
    from the directory itself which entries are files. Same semantics: ``**`` is any
    number of folders (none included) but never enters a linked folder, other parts
    follow links, and wildcards match hidden names too.
    """
    if not parts:
        return
    part, rest = parts[0], parts[1:]
    if part in ("", "."):
        yield from _glob_files(directory, rest)
        return
    if part == "**":
        if rest:
            yield from _glob_files(directory, rest)
        for entry in _entries(directory):
            # As Path.glob: ``**`` does not descend into linked folders (no link loops).
            if _is_dir(entry) and not entry.is_symlink():
                yield from _glob_files(os.path.join(directory, entry.name), parts)
        return
    if not _WILDCARD.search(part):
        path = os.path.join(directory, part)
        if rest:
            if os.path.isdir(path):
                yield from _glob_files(path, rest)
        elif os.path.isfile(path):
            yield path
        return
    matches = re.compile(fnmatch.translate(part)).match
    for entry in _entries(directory):
        if matches(entry.name):
            if rest:
                if _is_dir(entry):
                    yield from _glob_files(os.path.join(directory, entry.name), rest)
            elif _is_file(entry):
                yield os.path.join(directory, entry.name)


_WILDCARD = re.compile(r"[*?[]")


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link to itself (ELOOP): as Path.is_dir, not a folder
        return False


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _entries(directory: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory or ".") as entries:
            return list(entries)
    except OSError:
        return []  # as Path.glob: a folder that cannot be read holds nothing


def load_settings(path: Path) -> Settings:
    """Load and check ``oauth2-sync.yaml``; raises ``InputError`` with every finding."""
    doc = load_file(path)
    problems = schemacheck.check("settings", doc) or _absolute_patterns(doc)
    if problems:
        raise InputError(problems)
    return _build(path, doc.data)


def _absolute_patterns(doc: Document) -> list[Diagnostic]:
    """Path patterns are relative to the settings file; an absolute one would match nothing."""
    data = doc.data
    places: list[tuple[DataPath, Any]] = [(("clients", "paths"), data["clients"]["paths"])]
    places += [(("teams", name, "paths"), team["paths"]) for name, team in data["teams"].items()]
    return [
        doc.diagnostic(
            (*where, index), "settings",
            f"path pattern {pattern!r} is absolute: patterns are relative to this file",
        )
        for where, patterns in places
        for index, pattern in enumerate(patterns)
        if pattern.startswith("/")
    ]


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
            ),
            connect_timeout=float(reg.get("connect_timeout", 5)),
            read_timeout=float(reg.get("read_timeout", 30)),
            request_timeout=float(reg.get("request_timeout", 60)),
            deadline=float(reg.get("deadline", 3600)),
            retries=reg.get("retries", 5),
            page_size=reg.get("page_size", 500),
            max_clients=reg.get("max_clients", 200_000),
            ca_bundle=_path(root, reg.get("ca_bundle")),
            seed=_path(root, reg.get("seed")),
            state_file=_path(root, reg.get("state_file", ".oauth2-sync/rfc7592-state.json")),
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
    )


def _path(root: Path, value: str | None) -> Path | None:
    return None if value is None else root / value


def _command(root: Path, argv: list[str]) -> tuple[str, ...]:
    # `./ci/store-secret` means next to the settings file, like every other path here;
    # a bare name (`vault`) is looked up on PATH.
    program = argv[0]
    if "/" in program and not Path(program).is_absolute():
        program = str(root / program)
    return (program, *argv[1:])


def _resolve_local(url: str, root: Path) -> str:
    # A local store path is relative to the settings file, like every other path here.
    if url.startswith("local:"):
        target = Path(url[len("local:") :])
        return f"local:{target if target.is_absolute() else root / target}"
    return url


@functools.cache
def _glob_regex(pattern: str) -> re.Pattern[str]:
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
