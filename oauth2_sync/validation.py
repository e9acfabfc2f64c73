"""Offline validation of client files: schema, OAuth rules, ownership and policy.

Every file is checked and every finding collected; nothing here touches the network.
Rules run only on entries the schema accepted, so they can trust the types.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from oauth2_sync import durations, schemacheck
from oauth2_sync.errors import ORDER, Diagnostic, InputError, RuleId
from oauth2_sync.fast.gcpause import collector_paused
from oauth2_sync.fast.schema import clients_valid
from oauth2_sync.loader import DataPath, Document, display_path, load_file
from oauth2_sync.model import REDIRECT_GRANTS, Client
from oauth2_sync.records import NamedTuple
from oauth2_sync.redirects import redirect_uri_problem
from oauth2_sync.registry.capabilities import closed_vocabulary_message, entry_problems
from oauth2_sync.settings import Settings
from oauth2_sync.sources import expand_paths, outside_links, unmatched_files

logger = logging.getLogger(__name__)

__all__ = [
    "WARNING_RULES", "DesiredClient", "ValidationResult", "expand_paths", "load_desired",
    "redirect_uri_problem", "validate",
]

WARNING_RULES = (
    "unrestricted-users",
    "implicit-grant",
    "non-expiring-access-token",
    "refresh-ttl-without-grant",
)
"""Rules that warn unless ``policy.errors`` names them."""


class DesiredClient(NamedTuple):
    """A client declared in a file, with where it was declared."""

    client: Client
    document: Document
    position: int
    """Its place in the file's ``clients`` list (0-based)."""

    @property
    def file(self) -> str:
        """The file, as named in messages."""
        return self.document.display

    @property
    def line(self) -> int:
        """The line of the client's entry."""
        lines = self.document.entry_lines
        if self.position < len(lines):
            return lines[self.position]
        return self.document.locate(("clients", self.position))[0]


class ValidationResult(NamedTuple):
    """Every finding, sorted by file and line, and the clients that passed."""

    diagnostics: tuple[Diagnostic, ...]
    clients: tuple[DesiredClient, ...]
    files: tuple[str, ...]

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        """The findings that fail validation."""
        return tuple(d for d in self.diagnostics if d.severity == "error")

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        """The findings that do not."""
        return tuple(d for d in self.diagnostics if d.severity == "warning")


def validate(
    settings: Settings, paths: Sequence[Path] | None = None, *, unmatched: bool = True
) -> ValidationResult:
    """Check the client files (default: those the settings name) offline.

    With the settings' files, links that lead outside the configuration's folder are
    errors, and with ``unmatched`` the YAML files under the teams' folders that
    ``clients.paths`` leaves out are warnings.
    """
    diagnostics: list[Diagnostic] = []
    if paths:
        files = [str(p) for p in expand_paths(paths)]
    else:
        discovery = settings.discover()
        files = discovery.files
        diagnostics += outside_links(settings, discovery.outside)
        if unmatched:
            diagnostics += unmatched_files(settings, [*files, *discovery.outside])
    shown: list[str] = []
    candidates: list[DesiredClient] = []
    rejected: set[tuple[int, int]] = set()
    cwd = os.getcwd()
    with collector_paused():
        for path in files:
            display = display_path(path, cwd)
            shown.append(display)
            try:
                doc = load_file(path, display)
            except InputError as exc:
                diagnostics.extend(exc.diagnostics)
                continue
            checker = _FileChecker(settings, path, doc)
            diagnostics.extend(checker.run())
            candidates.extend(checker.clients)
            rejected.update((id(doc), i) for i in checker.rejected)
            doc.release_data()
    for later, first in _duplicate_entries(candidates):
        diagnostics.append(_duplicate(later, first))
        rejected.add((id(later.document), later.position))
    clients = [c for c in candidates if (id(c.document), c.position) not in rejected]
    if not files:
        diagnostics.append(
            Diagnostic(
                display_path(settings.path),
                1,
                1,
                "warning",
                "no-files",
                "no client files match clients.paths",
            )
        )
    return ValidationResult(
        tuple(sorted(diagnostics, key=ORDER)),
        tuple(clients),
        tuple(shown),
    )


def load_desired(settings: Settings) -> tuple[DesiredClient, ...]:
    """The desired clients, sorted by client ID; ``InputError`` if any file has an error."""
    # Warnings are not shown by plan: the walk for unmatched files is left to validate.
    result = validate(settings, unmatched=False)
    if result.errors:
        raise InputError(result.errors)
    return tuple(sorted(result.clients, key=lambda d: d.client.client_id))


class _FileChecker:
    """The rules for one loaded file."""

    def __init__(self, settings: Settings, path: str, doc: Document) -> None:
        self.settings = settings
        self.path = path
        self.doc = doc
        self.clients: list[DesiredClient] = []
        """Every entry the schema accepted, errors or not (for the duplicate check)."""
        self.rejected: set[int] = set()
        """Indexes of entries with errors."""
        self.found: list[Diagnostic] = []
        self.error_count = 0
        """How many errors ``error`` and ``warn`` added (counted: searching ``found`` for
        them before and after each client cost more than the client's rules)."""
        self.capabilities = settings.registry.capabilities

    def run(self) -> list[Diagnostic]:
        data = self.doc.data
        if not isinstance(data, dict):
            got = "empty" if data is None else f"a {type(data).__name__}"
            self.error(
                (), "schema", f"a client file must be a mapping with the key 'clients', not {got}"
            )
            return self.found
        schema_problems = (
            []
            if clients_valid(data)
            else schemacheck.check_paths("clients", self.doc)
        )
        # A bad token can break two schema rules and the vocabulary: deduplicated below.
        self.found.extend(self.vocabulary_wording(data, path, d) for path, d in schema_problems)
        entries = data.get("clients")
        if not isinstance(entries, list):
            return self.found
        broken = {
            path[1] for path, _ in schema_problems if len(path) > 1 and isinstance(path[1], int)
        }
        teams = self.settings.teams_owning(self.path)
        if not teams and entries:
            self.error(
                (), "team-ownership", "no team in the settings owns this file (teams.*.paths)"
            )
        for index, entry in enumerate(entries):
            # Run on schema-broken entries too: the schema's enums used to name every
            # scope and grant the registry does not offer, whatever else was wrong.
            if self.check_vocabulary(index, entry) or index in broken:
                continue
            self.check_client(index, entry, teams)
        self.found = list(dict.fromkeys(self.found))
        return self.found

    def vocabulary_wording(self, data: Any, path: DataPath, found: Diagnostic) -> Diagnostic:
        """A scope or grant that is not even a token, worded as the registry's closed
        vocabulary when it has one (the reference registry: "is not one of read, write")."""
        if len(path) != 4 or path[2] not in ("scopes", "grant_types"):
            return found
        try:
            value = data["clients"][path[1]][path[2]][path[3]]
        except (LookupError, TypeError):
            return found
        message = closed_vocabulary_message(self.settings.registry.capabilities, str(path[2]), value)
        if message is None:
            return found
        return found._replace(message=f"clients[{path[1]}].{path[2]}[{path[3]}]: {message}")

    def check_vocabulary(self, index: int, entry: object) -> bool:
        """Scopes, grants and public clients against what the registry can hold (as the
        settings know it); reported as the schema reported its enums, and like a schema
        error the entry's other rules are skipped. True when something was found."""
        if not isinstance(entry, dict):
            return False
        problems = entry_problems(self.capabilities, entry)
        for where, message in problems:
            shown = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where)
            self.error(("clients", index, *where), "schema", f"clients[{index}]{shown}: {message}")
        if problems:
            self.rejected.add(index)
        return bool(problems)

    def check_client(self, index: int, entry: dict[str, Any], teams: Sequence[Any]) -> None:
        at: DataPath = ("clients", index)
        client = Client.from_document(entry)
        before = self.error_count
        partner = client.partner
        if not client.client_id.startswith(f"{partner}-") or not client.user_name:
            self.error(
                (*at, "client_id"),
                "client-id",
                f"client_id '{client.client_id}' must be '{partner}-' followed by a user name",
            )
        if teams and not any(partner in team.partners for team in teams):
            owners = ", ".join(f"'{t.name}'" for t in teams)
            allowed = ", ".join(sorted({p for t in teams for p in t.partners}))
            self.error(
                (*at, "partner"),
                "team-ownership",
                f"partner '{partner}' is not one of the partners of team {owners} "
                f"that owns this file ({allowed})",
            )
        self.check_redirects(at, entry, client)
        self.check_lifetimes(at, entry, client)
        self.check_policy(at, entry, client)
        self.clients.append(DesiredClient(client, self.doc, index))
        if self.error_count != before:
            self.rejected.add(index)

    def check_redirects(self, at: DataPath, entry: dict[str, Any], client: Client) -> None:
        uris: list[str] = entry.get("redirect_uris") or []
        needs = sorted(REDIRECT_GRANTS.intersection(client.grant_types))
        if needs and not uris:
            where = (*at, "redirect_uris") if "redirect_uris" in entry else (*at, "grant_types")
            self.error(
                where,
                "redirect-uris-required",
                f"redirect_uris must not be empty with the {' and '.join(needs)} grant",
            )
        if uris and not needs:
            self.error(
                (*at, "redirect_uris"),
                "redirect-uris-forbidden",
                "redirect_uris are only allowed with the implicit or authorization_code grant",
            )
        seen: dict[str, int] = {}
        for i, uri in enumerate(uris):
            where = (*at, "redirect_uris", i)
            problem = redirect_uri_problem(uri)
            if problem:
                self.error(where, "redirect-uri", f"redirect URI {uri!r} {problem}")
            if uri in seen:
                line = self.doc.locate((*at, "redirect_uris", seen[uri]))[0]
                self.error(
                    where,
                    "redirect-uri-duplicate",
                    f"redirect URI {uri!r} is listed twice (first at line {line})",
                )
            else:
                seen[uri] = i
        if "implicit" in client.grant_types:
            self.warn(
                (*at, "grant_types", entry["grant_types"].index("implicit")),
                "implicit-grant",
                "the implicit grant is deprecated by the OAuth 2.0 Security BCP (RFC 9700); "
                "use authorization_code with PKCE",
            )

    def check_lifetimes(self, at: DataPath, entry: dict[str, Any], client: Client) -> None:
        refresh = client.refresh_token_ttl
        if refresh == durations.NEVER:
            self.error(
                (*at, "refresh_token_ttl"),
                "refresh-token-never",
                "refresh_token_ttl cannot be never: only the access token may be non-expiring",
            )
        if client.access_token_ttl == durations.NEVER:
            self.warn(
                (*at, "access_token_ttl"),
                "non-expiring-access-token",
                "access_token_ttl never: a leaked token stays valid forever",
            )
        if refresh is not None and "refresh_token" not in client.grant_types:
            self.warn(
                (*at, "refresh_token_ttl"),
                "refresh-ttl-without-grant",
                "refresh_token_ttl is set but the refresh_token grant is not granted",
            )
        if not client.restrict_to_partner_users:
            self.warn(
                (*at, "restrict_to_partner_users"),
                "unrestricted-users",
                "restrict_to_partner_users is false: users of any partner may obtain tokens",
            )

    def check_policy(self, at: DataPath, entry: dict[str, Any], client: Client) -> None:
        policy = self.settings.policy
        for field, limit, value in (
            ("access_token_ttl", policy.max_access_token_ttl, client.access_token_ttl),
            ("refresh_token_ttl", policy.max_refresh_token_ttl, client.refresh_token_ttl),
        ):
            if limit is None or value is None:
                continue
            if field == "refresh_token_ttl" and value == durations.NEVER:
                continue  # already an error of its own (refresh-token-never): one mistake, one line
            if value == durations.NEVER or value > limit:
                shown = "never" if value == durations.NEVER else durations.format_seconds(value)
                self.error(
                    (*at, field),
                    "policy-max-ttl",
                    f"{field} {shown} exceeds the policy maximum of "
                    f"{durations.format_seconds(limit)} (policy.max_{field})",
                )
        allowed = policy.allowed_grant_types
        if allowed is not None:
            for i, grant in enumerate(entry.get("grant_types") or ()):
                if grant not in allowed:
                    self.error(
                        (*at, "grant_types", i),
                        "policy-grant-type",
                        f"grant type '{grant}' is not allowed by policy.allowed_grant_types "
                        f"({', '.join(sorted(allowed))})",
                    )
            if "grant_types" not in entry:
                for grant in client.grant_types:
                    if grant not in allowed:
                        self.error(
                            at,
                            "policy-grant-type",
                            f"default grant type '{grant}' is not allowed by "
                            f"policy.allowed_grant_types; list grant_types explicitly",
                        )

    def error(self, path: DataPath, rule: RuleId, message: str) -> None:
        self.found.append(self.doc.diagnostic(path, rule, message))
        self.error_count += 1

    def warn(self, path: DataPath, rule: RuleId, message: str) -> None:
        promoted = rule in self.settings.policy.errors
        self.found.append(self.doc.diagnostic(path, rule, message, warning=not promoted))
        self.error_count += promoted


def _duplicate_entries(
    clients: Sequence[DesiredClient],
) -> Iterator[tuple[DesiredClient, DesiredClient]]:
    """Each later declaration of a client ID, with the first one."""
    if len({d.client.client_id for d in clients}) == len(clients):
        return  # the usual case, without sorting every client by file
    first: dict[str, DesiredClient] = {}
    for desired in sorted(clients, key=lambda d: (d.file, d.position)):
        cid = desired.client.client_id
        if cid in first:
            yield desired, first[cid]
        else:
            first[cid] = desired


def _duplicate(desired: DesiredClient, other: DesiredClient) -> Diagnostic:
    cid = desired.client.client_id
    line, column = other.document.locate(("clients", other.position, "client_id"))
    return desired.document.diagnostic(
        ("clients", desired.position, "client_id"),
        "duplicate-client-id",
        f"client_id '{cid}' is also declared at {other.file}:{line}:{column}",
    )
