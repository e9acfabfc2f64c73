"""Field-level differences between normal-form clients."""

from __future__ import annotations

import pytest

from oauth2_sync.diff import COMPARED_FIELDS, FieldChange, client_fields, client_json, diff_clients
from oauth2_sync.model import Client

BASE = Client(
    client_id="acme-reporting",
    name="Reporting service",
    email="data-team@acme.example",
    partner="acme",
)


def test_equal_clients_have_no_changes() -> None:
    same = Client("acme-reporting", "Reporting service", "data-team@acme.example", "acme")
    assert same is not BASE
    assert diff_clients(BASE, same) == ()


def test_each_differing_field_carries_before_and_after_in_field_order() -> None:
    after = Client(
        client_id="acme-reporting",
        name="Reporting",
        email="data-team@acme.example",
        partner="acme",
        scopes=("read", "write"),
        access_token_ttl=3600,
    )
    assert diff_clients(BASE, after) == (
        FieldChange("name", "Reporting service", "Reporting"),
        FieldChange("scopes", ("read",), ("read", "write")),
        FieldChange("access_token_ttl", None, 3600),
    )


@pytest.mark.parametrize(
    ("field", "before", "after", "same_effect"),
    [
        ("access_token_ttl", None, 43200, True),
        ("access_token_ttl", 43200, None, True),
        ("access_token_ttl", None, 3600, False),
        ("access_token_ttl", None, -1, False),
        ("refresh_token_ttl", None, 30 * 86400, True),
        ("refresh_token_ttl", None, 43200, False),
    ],
)
def test_a_pinned_platform_default_is_a_change_with_the_same_effect(
    field: str, before: int | None, after: int | None, same_effect: bool
) -> None:
    old = Client("acme-x", "X", "x@acme.example", "acme", **{field: before})  # type: ignore[arg-type]
    new = Client("acme-x", "X", "x@acme.example", "acme", **{field: after})  # type: ignore[arg-type]
    assert diff_clients(old, new) == (FieldChange(field, before, after, same_effect),)


def test_client_fields_lists_every_field_but_the_key() -> None:
    # The auth method only when not the default, as files and plan documents keep it.
    assert [name for name, _ in client_fields(BASE)] == [
        f for f in COMPARED_FIELDS if f != "token_endpoint_auth_method"
    ]
    public = BASE._replace(token_endpoint_auth_method="none")
    assert [name for name, _ in client_fields(public)] == list(COMPARED_FIELDS)
    assert dict(client_fields(public))["token_endpoint_auth_method"] == "none"
    assert "client_id" not in COMPARED_FIELDS
    assert dict(client_fields(BASE))["grant_types"] == ("password", "refresh_token")


def test_making_a_client_public_is_a_field_change() -> None:
    public = BASE._replace(token_endpoint_auth_method="none")
    assert diff_clients(BASE, public) == (
        FieldChange("token_endpoint_auth_method", "client_secret_basic", "none"),
    )
    assert "token_endpoint_auth_method" not in client_json(BASE)  # type: ignore[operator]
    assert client_json(public)["token_endpoint_auth_method"] == "none"  # type: ignore[index]
