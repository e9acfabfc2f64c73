"""Tests written to kill the mutants scripts/mutation found alive
(docs/development/testing.md, "Tests").

Each pins a boundary the rest of the suite crossed only from afar: a limit met exactly,
a fragment with nothing after the ``#``, a quote without a backslash.
"""

from __future__ import annotations

import pytest

from oauth2_sync.model import Client
from oauth2_sync.plan import Change, Plan, safety_violations
from oauth2_sync.render import escape
from oauth2_sync.settings import Safety
from oauth2_sync.validation import redirect_uri_problem

MANAGED = 100
LOOSE = Safety(max_changes=10_000, max_deletes=10_000, min_managed_clients=10)
"""Absolute limits out of the way, so that only the shares count."""


def _client(number: int) -> Client:
    return Client(
        client_id=f"acme-{number}", name=f"Service {number}", email="team@acme.example",
        partner="acme",
    )


def _plan(creates: int = 0, deletes: int = 0, managed: int = MANAGED) -> Plan:
    changes = [Change("create", f"acme-{n}", after=_client(n)) for n in range(creates)]
    changes += [
        Change("delete", f"acme-{n}", before=_client(n), version="1")
        for n in range(creates, creates + deletes)
    ]
    return Plan(
        registry="local:registry.db", changes=tuple(changes), no_op=0, unmanaged=0,
        managed=managed, versions=(),
    )


def _settings_hit(plan: Plan, safety: Safety) -> list[str]:
    return [limit.setting for limit in safety_violations(plan, safety)]


@pytest.mark.parametrize(("creates", "refused"), [(29, False), (30, False), (31, True)])
def test_a_share_of_changes_exactly_at_the_limit_is_allowed_one_above_refused(
    creates: int, refused: bool
) -> None:
    assert _settings_hit(_plan(creates=creates), LOOSE) == (
        ["max_changes_percent"] if refused else []
    )


@pytest.mark.parametrize(("deletes", "refused"), [(10, False), (11, True)])
def test_a_share_of_deletes_exactly_at_the_limit_is_allowed_one_above_refused(
    deletes: int, refused: bool
) -> None:
    assert _settings_hit(_plan(deletes=deletes), LOOSE) == (
        ["max_deletes_percent"] if refused else []
    )


def test_the_refusal_names_the_share_and_the_limit() -> None:
    (limit,) = safety_violations(_plan(creates=31), LOOSE)
    assert (limit.what, limit.figure, limit.maximum) == (
        "creates+updates as a share of the 100 managed clients", "31 (31.0%)", "30%",
    )


@pytest.mark.parametrize(("count", "refused"), [(5, False), (6, True)])
def test_absolute_limits_exactly_met_are_allowed_one_above_refused(
    count: int, refused: bool
) -> None:
    safety = Safety(max_changes=5, max_deletes=5, min_managed_clients=10**6)
    expected = ["max_changes", "max_deletes"] if refused else []
    assert _settings_hit(_plan(creates=count, deletes=count), safety) == expected


@pytest.mark.parametrize(("managed", "applies"), [(9, False), (10, True)])
def test_shares_apply_from_exactly_min_managed_clients(managed: int, applies: bool) -> None:
    # 5 creates of 9 or 10 managed clients: 50% or more, far above 30%.
    hit = _settings_hit(_plan(creates=5, managed=managed), LOOSE)
    assert hit == (["max_changes_percent"] if applies else [])


def test_shares_do_not_apply_to_an_empty_registry() -> None:
    safety = Safety(max_changes=10_000, max_deletes=10_000, min_managed_clients=0)
    assert _settings_hit(_plan(creates=3, managed=0), safety) == []


def test_shares_apply_to_a_registry_of_one_managed_client() -> None:
    # The smallest registry the shares guard: deleting its one client is 100%.
    safety = Safety(max_changes=10_000, max_deletes=10_000, min_managed_clients=0)
    assert _settings_hit(_plan(deletes=1, managed=1), safety) == ["max_deletes_percent"]


@pytest.mark.parametrize("uri", ["https://app.example/cb#", "https://app.example/cb#x"])
def test_a_fragment_is_refused_even_when_empty(uri: str) -> None:
    assert redirect_uri_problem(uri) == "has a fragment (#...), which RFC 6749 §3.1.2 forbids"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('say "hi"', 'say \\"hi\\"'),  # a quote, no backslash: the shortcut must not take it
        ("back\\slash", "back\\\\slash"),
        ("plain ascii", "plain ascii"),
    ],
)
def test_escape_takes_the_shortcut_only_for_text_with_nothing_to_escape(
    text: str, shown: str
) -> None:
    assert escape(text) == shown
