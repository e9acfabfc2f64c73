"""The shipped JSON Schemas: valid draft 2020-12, documented, and the examples pass."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from oauth2_sync import schemacheck, validation
from oauth2_sync.loader import load_bytes, load_file
from oauth2_sync.settings import load_settings
from oauth2_sync.validation import validate

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


_NO_JSONSCHEMA = """
import sys
from pathlib import Path
from oauth2_sync.plan import make_plan
from oauth2_sync.registry import open_registry
from oauth2_sync.settings import load_settings
from oauth2_sync.validation import validate

settings = load_settings(Path("oauth2-sync.yaml"))
assert not validate(settings).errors
with open_registry(settings) as registry:
    made = make_plan(settings, registry)
assert made.summary.create == 12, made.summary
print(sorted(m for m in sys.modules if m.split(".")[0] == "jsonschema"))
"""


def test_a_clean_validate_and_plan_do_not_import_jsonschema(tmp_path: Path) -> None:
    """The fast checks decide every shipped file: jsonschema (90 ms to import) stays out."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    done = subprocess.run(
        [sys.executable, "-c", _NO_JSONSCHEMA], cwd=tmp_path / "examples",
        capture_output=True, text=True, check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "[]\n", "")


_ENTRY_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 10**9), st.sampled_from([1.0, 2.5]),
    st.sampled_from(["read", "write", "implicit", "password", "refresh_token",
                     "authorization_code", "1h", "never", "90d", "acme", "acme-x", "", "x\n",
                     "https://a.example/cb", "http://127.0.0.1/cb", "a@acme.example"]),
)
_ENTRY_KEYS = st.sampled_from([
    "client_id", "name", "email", "partner", "scopes", "grant_types", "redirect_uris",
    "access_token_ttl", "refresh_token_ttl", "restrict_to_partner_users", "other",
])


@hypothesis_settings(max_examples=150, deadline=None)
@given(st.lists(
    st.dictionaries(_ENTRY_KEYS, st.one_of(_ENTRY_VALUES, st.lists(_ENTRY_VALUES, max_size=3)),
                    max_size=4),
    min_size=1, max_size=3,
))
def test_the_fast_checks_and_jsonschema_give_the_same_findings(
    changes: list[dict[str, object]]
) -> None:
    """A client file's findings are the same whether the fast checks decide it or
    jsonschema checks every file."""
    base = {"client_id": "acme-x", "name": "X", "email": "x@acme.example", "partner": "acme"}
    data = {"clients": [{**base, **change} for change in changes]}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "clients").mkdir()
        (root / "clients" / "a.yaml").write_text(yaml.safe_dump(data))
        (root / "oauth2-sync.yaml").write_text(
            "registry:\n  url: local:r.db\nclients:\n  paths: [clients/*.yaml]\n"
            "teams:\n  t:\n    paths: [clients/**]\n    partners: [acme]\n"
        )
        settings = load_settings(root / "oauth2-sync.yaml")
        fast = validate(settings, [root / "clients" / "a.yaml"])
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(validation, "clients_valid", lambda data: False)
            patch.setattr(schemacheck, "subset_valid", lambda schema, data, root: False)
            slow = validate(settings, [root / "clients" / "a.yaml"])
    assert fast.diagnostics == slow.diagnostics
    assert [c.client for c in fast.clients] == [c.client for c in slow.clients]
