"""What each fast path of ``oauth2_sync.fast`` saves on a plan with no changes.

python benchmarks/fastpaths.py [--clients 10000] [--rounds 7]

Generates a config repository of ``--clients`` clients on a realistic mix (several
clients per file, one to seven; a fifth of them warn ``unrestricted-users``), puts the
same clients into a store served by ``oauth2-sync registry serve`` on 127.0.0.1, then
times ``make_plan`` with every fast path on and with each one in turn replaced by its
readable reference. The machine may be shared and noisy: each round times every
variant once, in a rotated order, and the table shows the median of the rounds. A
fast path whose saving is under 5% of the plan is to be deleted (issue #17).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import PARTNERS, client_yaml
from plan_apply import API_ID, API_SECRET, seed_store, server
from run import store_clients, write_repository_settings

from oauth2_sync import redirects, validation
from oauth2_sync import settings as settings_module
from oauth2_sync.fast import glob as fast_glob
from oauth2_sync.plan import make_plan
from oauth2_sync.registry import base as registry_base
from oauth2_sync.registry import open_registry
from oauth2_sync.settings import Settings, load_settings

Variant = Callable[[], contextlib.AbstractContextManager[None]]


def write_mixed_repository(root: Path, count: int) -> Path:
    """``count`` clients in files of one to seven clients each; returns the settings path."""
    for n, partner in enumerate(PARTNERS):
        folder = root / "clients" / partner
        folder.mkdir(parents=True, exist_ok=True)
        indexes = list(range(n, count, len(PARTNERS)))
        size, start = 1, 0
        while start < len(indexes):
            chunk = indexes[start : start + size]
            entries = "".join(
                client_yaml(i, partner)
                + ("    restrict_to_partner_users: false\n" if i % 5 == 0 else "")
                for i in chunk
            )
            (folder / f"team{chunk[0]:06d}.yaml").write_text("clients:\n" + entries)
            start += size
            size = size % 7 + 1
    settings = root / "oauth2-sync.yaml"
    teams = "".join(f"  {p}:\n    paths: [clients/{p}/**]\n    partners: [{p}]\n" for p in PARTNERS)
    settings.write_text(
        "registry:\n  url: local:.oauth2-sync/registry.db\nclients:\n  paths: [clients/**/*.yaml]\n"
        f"teams:\n{teams}safety:\n  max_changes: 1000000\n  max_changes_percent: 100\n"
        "secrets:\n  directory: .secrets\n"
    )
    return settings


@contextlib.contextmanager
def _patched(module: object, name: str, value: object) -> Iterator[None]:
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def _never(*args: object) -> bool:
    return False


def _not_known(*args: object) -> None:
    return None


def _path_glob(
    directory: str, parts: list[str], follows: fast_glob.Follows = lambda link: True
) -> Iterator[str]:
    """The readable reference of ``fast.glob.glob_files``: ``Path.glob`` and ``is_file``."""
    pattern = "/".join(part for part in parts if part not in ("", "."))
    for path in Path(directory or ".").glob(pattern):
        if path.is_file():
            yield str(path)


@contextlib.contextmanager
def _collector_running() -> Iterator[None]:
    with (
        _patched(validation, "collector_paused", contextlib.nullcontext),
        _patched(registry_base, "collector_paused", contextlib.nullcontext),
    ):
        yield


VARIANTS: dict[str, Variant] = {
    "all fast paths": contextlib.nullcontext,
    "schema (jsonschema)": lambda: _patched(validation, "clients_valid", _never),
    "redirect (urlsplit)": lambda: _patched(redirects, "plainly_valid", _never),
    "glob (Path.glob)": lambda: _patched(settings_module, "glob_files", _path_glob),
    "prefix (Path.relative_to)": lambda: _patched(settings_module, "relative_fast", _not_known),
    "GC pause (none)": _collector_running,
}
"""Each fast path replaced by its readable reference, beside all of them on."""


def measure(
    settings: Settings, count: int, rounds: int, names: list[str]
) -> dict[str, list[float]]:
    """Seconds of each variant's plan, one figure per round."""
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            with VARIANTS[name]():
                gc.collect()
                start = time.perf_counter()
                with open_registry(settings) as registry:
                    made = make_plan(settings, registry)
                seconds[name].append(time.perf_counter() - start)
            assert not made.has_changes and made.no_op == count, made.summary
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--only", nargs="*", choices=list(VARIANTS), help="time only these variants, beside all on"
    )
    args = parser.parse_args()
    os.environ["OAUTH2_SYNC_CLIENT_ID"] = API_ID
    os.environ["OAUTH2_SYNC_CLIENT_SECRET"] = API_SECRET
    with tempfile.TemporaryDirectory(prefix="bench-fast-") as tmp:
        root = Path(tmp)
        db = root / "registry.db"
        seed_store(db, args.clients)
        store_clients(db, load_settings(write_mixed_repository(root, args.clients)).client_files())
        with server(db) as url:
            settings = load_settings(write_repository_settings(root, url))
            names = ["all fast paths", *(n for n in VARIANTS if n in (args.only or VARIANTS))]
            seconds = measure(settings, args.clients, args.rounds, list(dict.fromkeys(names)))
    base = statistics.median(seconds["all fast paths"])
    print(f"plan, no changes, {args.clients:,} clients, median of {args.rounds} rounds")
    print(f"{'variant':<24} {'median':>9} {'saving':>8}  verdict")
    for name, figures in seconds.items():
        median = statistics.median(figures)
        saving = (median - base) / median * 100
        verdict = "" if name == "all fast paths" else ("keep" if saving >= 5 else "remove")
        print(f"{name:<24} {median:>8.3f}s {saving:>7.1f}%  {verdict}")


if __name__ == "__main__":
    main()
