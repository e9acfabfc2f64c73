"""Shared fixtures: the reference registry server as a real subprocess on 127.0.0.1.

- ``registry_server`` (session): one ``python -m oauth2_sync registry serve`` seeded
  with ``examples/registry-seed.yaml``, on a free port with a temporary database. Tests
  that share it must not assume an empty registry: use client IDs of their own.
- ``start_registry_server`` (function): a factory for servers with their own options
  (``token_ttl=1``, ``rate_limit=2``...) and their own database; stopped after the test.
- ``registry_env``: sets ``OAUTH2_SYNC_CLIENT_ID``/``OAUTH2_SYNC_CLIENT_SECRET`` to the
  read-write API credential of ``registry_server`` for the test.
- ``registry_settings``: a factory writing an ``oauth2-sync.yaml`` that points at a
  server and returning the loaded ``Settings``.
- ``canaille`` (session): one Canaille 0.3.6 (tests/support/canaille_peer.py) with open
  registration, for the tests that run against the second real server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings
from support.canaille_peer import CanaillePeer, canaille_problem, running_canaille
from support.oidc_peer import peer_problem
from support.registry import RegistryServer, launch_registry_server, write_registry_settings

from oauth2_sync.settings import Settings, load_settings

# scripts/mutation runs the tests traced, forked and at the lowest priority: timings
# mean nothing there, so its profile (--hypothesis-profile=mutation) has no deadline.
hypothesis_settings.register_profile("mutation", deadline=None)


@pytest.fixture(scope="session")
def registry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """One reference server for the whole session, seeded with the example seed."""
    server = launch_registry_server(tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()


@pytest.fixture
def start_registry_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., RegistryServer]]:
    """A factory: ``start_registry_server(token_ttl=1, rate_limit=2)`` starts a server
    with its own database (keyword arguments of ``launch_registry_server``); every
    server it started is stopped after the test."""
    started: list[RegistryServer] = []

    def start(**options: Any) -> RegistryServer:
        server = launch_registry_server(tmp_path_factory.mktemp("registry"), **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def canaille(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CanaillePeer]:
    """One Canaille for the session (open registration; ``mint_command`` for tokens).
    Tests that share it must use client IDs of their own."""
    with running_canaille(tmp_path_factory.mktemp("canaille")) as server:
        yield server


@pytest.fixture
def registry_env(
    registry_server: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Point the HTTP adapter's default credential variables at ``registry_server``'s
    read-write credential for this test; returns them."""
    env = registry_server.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def registry_settings(tmp_path: Path) -> Callable[..., Settings]:
    """A factory: ``registry_settings(url, **options)`` writes an ``oauth2-sync.yaml`` in a
    temporary folder (see ``write_registry_settings``) and returns the loaded settings."""

    def make(url: str, **options: Any) -> Settings:
        return load_settings(write_registry_settings(tmp_path / "config", url, **options))

    return make


# --- markers ---------------------------------------------------------------------

SLOW_MODULES: frozenset[str] = frozenset({
    "test_broken_environments", "test_e2e_drift", "test_e2e_plan_apply", "test_e2e_rfc7592",
    "test_e2e_servers", "test_faults", "test_hostile_registry", "test_interrupts", "test_kit",
    "test_release",
})
"""Modules of whole-workflow runs (CLI subprocesses, servers, CI jobs): marked ``slow`` and
left out of the inner loop, ``pytest -m "not slow and not peer"``."""

PEER_NAMES = frozenset({"running_peer", "OidcPeer"})
"""A test that calls these, or uses a fixture that does, needs the oidc-provider peer."""
CANAILLE_NAMES = frozenset({"running_canaille", "CanaillePeer"})
"""A test that calls these, or uses a fixture that does, needs Canaille."""

PEERS = pytest.StashKey[set[str]]()
"""The peers a ``peer`` test needs (set at collection)."""


def _peers_used(item: pytest.Item) -> set[str]:
    functions = [getattr(item, "function", None)]
    info = getattr(item, "_fixtureinfo", None)
    if info is not None:
        functions += [d.func for defs in info.name2fixturedefs.values() for d in defs]
    names = {n for f in functions for n in getattr(getattr(f, "__code__", None), "co_names", ())}
    peers = set()
    if PEER_NAMES & names:
        peers.add("oidc-provider")
    if CANAILLE_NAMES & names:
        peers.add("canaille")
    return peers


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``peer`` what starts oidc-provider or Canaille (found from the code, so a new test cannot
    forget the mark) and ``slow`` the modules listed in ``SLOW_MODULES``."""
    for item in items:
        peers = _peers_used(item)
        if peers:
            item.add_marker(pytest.mark.peer)
            item.stash[PEERS] = peers
        if item.path.stem in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A ``peer`` test fails at once, saying what is missing and how to install it,
    rather than erroring deep in a fixture (and it is not skipped: CI must run it)."""
    peers = item.stash.get(PEERS, set())
    for peer, problem in (("oidc-provider", peer_problem), ("canaille", canaille_problem)):
        found = problem() if peer in peers else None
        if found is not None:
            pytest.fail(found, pytrace=False)
