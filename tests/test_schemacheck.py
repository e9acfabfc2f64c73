"""The shipped JSON Schemas: valid draft 2020-12, documented, and the examples pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from oauth2_sync import schemacheck
from oauth2_sync.loader import load_bytes, load_file

ROOT = Path(__file__).parent.parent
EXAMPLE_CLIENT_FILES = sorted((ROOT / "examples" / "clients").rglob("*.yaml"))


@pytest.mark.parametrize("name", ["clients", "settings"])
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = schemacheck.load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def _properties(node: Any) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        for key, value in node.get("properties", {}).items():
            found.append((key, value))
        for value in node.values():
            found.extend(_properties(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_properties(value))
    return found


@pytest.mark.parametrize("name", ["clients", "settings"])
def test_every_property_has_a_title_and_description(name: str) -> None:
    missing = [
        key
        for key, prop in _properties(schemacheck.load_schema(name))
        if not prop.get("title") or not prop.get("description")
    ]
    assert missing == []


def test_repository_schemas_folder_is_the_packaged_one() -> None:
    assert (ROOT / "schemas" / "clients.schema.json").read_text() == (
        ROOT / "oauth2_sync" / "schemas" / "clients.schema.json"
    ).read_text()


@pytest.mark.parametrize("path", EXAMPLE_CLIENT_FILES, ids=[p.name for p in EXAMPLE_CLIENT_FILES])
def test_example_client_file_validates(path: Path) -> None:
    assert schemacheck.check("clients", load_file(path)) == []


def test_example_settings_validate() -> None:
    doc = load_file(ROOT / "examples" / "oauth2-sync.yaml")
    assert schemacheck.check("settings", doc) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "clients: []\nextra: 1\n",
            ["f.yaml:2:1: error: [unknown-key] unknown key 'extra' (expected one of: clients)"],
        ),
        (
            "clients:\n  - {client_id: acme-a, name: A, email: a@acme.example, partner: acme, "
            "grant_typs: [password]}\n",
            [
                "f.yaml:2:72: error: [unknown-key] unknown key 'grant_typs' "
                "(did you mean 'grant_types'?)"
            ],
        ),
        (
            "clients:\n  - {}\n",
            [
                "f.yaml:2:5: error: [missing-key] clients[0]: missing required key 'client_id'",
                "f.yaml:2:5: error: [missing-key] clients[0]: missing required key 'email'",
                "f.yaml:2:5: error: [missing-key] clients[0]: missing required key 'name'",
                "f.yaml:2:5: error: [missing-key] clients[0]: missing required key 'partner'",
            ],
        ),
    ],
    ids=["unknown-root-key", "typo-in-flow-mapping", "empty-client"],
)
def test_messages(text: str, expected: list[str]) -> None:
    doc = load_bytes(text.encode(), "f.yaml")
    assert [str(d) for d in schemacheck.check("clients", doc)] == expected


@pytest.mark.parametrize("name", ["clients", "settings"])
def test_the_example_repository_carries_the_current_schemas(name: str) -> None:
    # The template is copied whole, so its yaml-language-server comments point inside
    # it; `oauth2-sync schema NAME > schemas/NAME.schema.json` refreshes the copies.
    copy = ROOT / "examples" / "schemas" / f"{name}.schema.json"
    assert copy.read_text() == (ROOT / "schemas" / f"{name}.schema.json").read_text()


def test_every_schema_comment_of_the_examples_resolves() -> None:
    for path in [ROOT / "examples" / "oauth2-sync.yaml", *EXAMPLE_CLIENT_FILES]:
        first = path.read_text().splitlines()[0]
        target = first.split("$schema=", 1)[1]
        assert (path.parent / target).is_file(), path
