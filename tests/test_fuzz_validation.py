"""Property tests: whatever the input, only the project's own errors come out.

Bounded for CI; ``benchmarks/fuzz.py`` runs the same properties with a large budget.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oauth2_sync.errors import InputError
from oauth2_sync.loader import load_bytes
from oauth2_sync.settings import Settings, load_settings
from oauth2_sync.validation import validate

FIXTURES = Path(__file__).parent / "fixtures"
SETTINGS: Settings = load_settings(FIXTURES / "oauth2-sync.yaml")
KEYS = [
    "clients",
    "client_id",
    "name",
    "email",
    "partner",
    "scopes",
    "grant_types",
    "redirect_uris",
    "access_token_ttl",
    "refresh_token_ttl",
    "restrict_to_partner_users",
]
VALUES = [
    "read",
    "write",
    "acme",
    "acme-x",
    "never",
    "12h",
    "0s",
    "implicit",
    "password",
    "authorization_code",
    "refresh_token",
    "https://a.example/cb",
    "http://x/cb#f",
    "a@b.c",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(VALUES),
)
structures = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(
            st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children, max_size=8
        ),
    ),
    max_leaves=40,
)


def check(raw: bytes, tmp: Path) -> None:
    path = tmp / "valid" / "fuzz.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    try:
        load_bytes(raw, "fuzz.yaml")
    except InputError as exc:
        assert exc.diagnostics
    result = validate(SETTINGS, [path])
    for diagnostic in result.diagnostics:
        assert diagnostic.line >= 1 and diagnostic.column >= 1


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=300))
def test_arbitrary_text(tmp_path: Path, text: str) -> None:
    check(text.encode("utf-8", "surrogatepass"), tmp_path)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes(tmp_path: Path, raw: bytes) -> None:
    check(raw, tmp_path)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=structures)
def test_arbitrary_structures(tmp_path: Path, data: Any) -> None:
    check(yaml.safe_dump(data).encode(), tmp_path)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(client=st.dictionaries(st.sampled_from(KEYS[1:]), structures, max_size=10))
def test_arbitrary_clients(tmp_path: Path, client: dict[str, Any]) -> None:
    check(yaml.safe_dump({"clients": [client]}).encode(), tmp_path)
