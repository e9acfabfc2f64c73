"""Seed files: the partners, password-grant users and API credentials a registry starts with.

The file's shape is published as ``schemas/registry-seed.schema.json`` (editors check
it through the ``yaml-language-server`` comment of ``examples/registry-seed.yaml``);
the reader below enforces the same rules and names the offending entry.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Final, NoReturn, cast

from oauth2_sync.errors import UsageError
from oauth2_sync.loader import load_file
from oauth2_sync.model import SUBDOMAIN_PATTERN
from oauth2_sync.refserver.records import MAX_INT, ApiCredential, ApiUser, PartnerRecord, Seed
from oauth2_sync.secret import Secret

SUBDOMAIN_RE: Final = re.compile(SUBDOMAIN_PATTERN)
_ENV_REF: Final = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SCOPES: Final = ("read", "read write", "write read")


def load_seed(path: Path) -> Seed:
    """Read a seed file (partners, users, API credentials); see
    docs/reference/registry-api.md, "The seed file".

    Secrets may be written as ``${VAR}`` or ``${VAR:-default}``: the value of the
    environment variable, or the default when it is unset or empty. Raises
    ``UsageError`` naming the file and the offending entry.
    """
    return _SeedReader(str(path)).read(load_file(path).data)


def _items(value: object) -> list[object]:
    # An optional list: absent or null is empty (a wrong type fails on its entries).
    return list(cast("Iterable[object]", value or []))


class _SeedReader:
    """Checks one seed document; every failure is ``UsageError('FILE: WHERE: WHY')``."""

    def __init__(self, where: str) -> None:
        self.where = where

    def read(self, data: object) -> Seed:
        """The seed that ``data`` (the parsed file) declares."""
        root = self.mapping(
            data, "top level", {"partners", "api_credentials", "api_users"}, {"partners"}
        )
        partners = self.partners(root["partners"])
        credentials = tuple(
            ApiCredential(*self.account(entry, f"api_credentials[{i}]", "client_id", "secret"))
            for i, entry in enumerate(_items(root.get("api_credentials")))
        )
        users = tuple(
            ApiUser(*self.account(entry, f"api_users[{i}]", "username", "password"))
            for i, entry in enumerate(_items(root.get("api_users")))
        )
        return Seed(partners, credentials, users)

    def fail(self, at: str, message: str) -> NoReturn:
        """Stop with the file, the entry and the reason."""
        raise UsageError(f"{self.where}: {at}: {message}")

    def mapping(
        self, value: object, at: str, keys: set[str], required: set[str]
    ) -> dict[str, object]:
        """``value`` as a mapping with only ``keys`` and at least ``required``."""
        if not isinstance(value, dict):
            self.fail(at, "must be a mapping")
        unknown = sorted(set(value) - keys)
        if unknown:
            self.fail(at, f"unknown key '{unknown[0]}' (allowed: {', '.join(sorted(keys))})")
        missing = sorted(required - set(value))
        if missing:
            self.fail(at, f"'{missing[0]}' is required")
        return {str(k): v for k, v in value.items()}

    def text(self, value: object, at: str) -> str:
        """A non-empty string."""
        if not isinstance(value, str) or not value:
            self.fail(at, "must be a non-empty string")
        return value

    def secret(self, value: object, at: str) -> Secret:
        """A secret with its ``${VAR}`` / ``${VAR:-default}`` references expanded."""
        raw = self.text(value, at)

        def expand(match: re.Match[str]) -> str:
            found = os.environ.get(match.group(1))
            if found:
                return found
            if match.group(2) is not None:
                return match.group(2)
            self.fail(at, f"environment variable {match.group(1)} is not set")

        result = _ENV_REF.sub(expand, raw)
        if not result:
            self.fail(at, "is empty")
        return Secret(result)

    def scope(self, value: object, at: str) -> tuple[str, ...]:
        """``read`` or ``read write``, as a sorted tuple."""
        if value not in _SCOPES:
            self.fail(at, "must be 'read' or 'read write'")
        return tuple(sorted(str(value).split()))

    def account(
        self, entry: object, at: str, name_key: str, secret_key: str
    ) -> tuple[str, Secret, tuple[str, ...]]:
        """An API credential or a user: its name, its secret and its scope."""
        item = self.mapping(entry, at, {name_key, secret_key, "scope"}, {name_key, secret_key})
        return (
            self.text(item[name_key], f"{at}.{name_key}"),
            self.secret(item[secret_key], f"{at}.{secret_key}"),
            self.scope(item.get("scope", "read"), f"{at}.scope"),
        )

    def partners(self, entries: object) -> tuple[PartnerRecord, ...]:
        """The partners, ids and subdomains unique."""
        if not isinstance(entries, list):
            self.fail("partners", "must be a list")
        partners = tuple(self.partner(entry, f"partners[{i}]") for i, entry in enumerate(entries))
        ids = {p.id for p in partners}
        subdomains = {p.subdomain for p in partners}
        if len(ids) != len(partners) or len(subdomains) != len(partners):
            self.fail("partners", "ids and subdomains must be unique")
        return partners

    def partner(self, entry: object, at: str) -> PartnerRecord:
        """One partner: id, subdomain, display name (the subdomain by default), users."""
        item = self.mapping(entry, at, {"id", "subdomain", "name", "users"}, {"id", "subdomain"})
        partner_id = item["id"]
        if not isinstance(partner_id, int) or isinstance(partner_id, bool) or not (
            1 <= partner_id <= MAX_INT
        ):
            self.fail(f"{at}.id", "must be a positive integer")
        sub = self.text(item["subdomain"], f"{at}.subdomain")
        if not SUBDOMAIN_RE.fullmatch(sub):
            self.fail(f"{at}.subdomain", "must be lower-case letters, digits and '-'")
        users = item.get("users", [])
        if not isinstance(users, list):
            self.fail(f"{at}.users", "must be a list of user names")
        return PartnerRecord(
            partner_id,
            sub,
            self.text(item.get("name", sub), f"{at}.name"),
            tuple(self.text(u, f"{at}.users[{j}]") for j, u in enumerate(users)),
        )
