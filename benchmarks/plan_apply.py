"""Plan and apply at scale against the reference server, beside the floor.

python benchmarks/plan_apply.py [N ...] [--backend http|local] [--parallelism P] [--diff]

For each N (default 1000 and 10000) it generates a config repository of N clients
(one file each), starts ``oauth2-sync registry serve`` on 127.0.0.1 with an empty
store, and measures, in process:

- plan against the empty registry (N creates), and apply of those creates;
- plan with no changes (best of 3), beside the floor measured in the same run: a bare
  ``requests`` loop over every page of ``GET /v1/oauth2-clients`` plus
  ``yaml.load(..., Loader=yaml.CSafeLoader)`` of the same files (best of 3);
- ``oauth2-sync plan`` as a process (startup included);
- plan and apply after an edit of 5% of the files (updates).

``--diff`` measures the field differ alone: DeepDiff on every pair, equality first and
DeepDiff on the 5% that differ, and equality first with ``diff.diff_clients``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).parent))

from common import PARTNERS, best_of, write_repository
from floor import page_loop

from oauth2_sync.apply import apply_plan, check_preconditions
from oauth2_sync.diff import diff_clients
from oauth2_sync.model import Client
from oauth2_sync.plan import Plan, make_plan
from oauth2_sync.refserver.records import ApiCredential, PartnerRecord, Seed
from oauth2_sync.refserver.store import RegistryStore
from oauth2_sync.registry import open_registry
from oauth2_sync.secret import Secret
from oauth2_sync.settings import Settings, load_settings
from oauth2_sync.sink import open_sink

API_ID = "bench"
API_SECRET = "bench-secret-for-local-benchmarks"


def seed_store(db: Path, count: int) -> None:
    """Partners with the user of every generated client, and one read-write API credential."""
    users: dict[str, list[str]] = {p: [] for p in PARTNERS}
    for i in range(count):
        users[PARTNERS[i % len(PARTNERS)]].append(f"svc{i:06d}")
    store = RegistryStore(db)
    store.apply_seed(Seed(
        tuple(PartnerRecord(100 + n, p, p.title(), tuple(users[p])) for n, p in enumerate(PARTNERS)),
        (ApiCredential(API_ID, Secret(API_SECRET), ("read", "write")),),
        (),
    ))
    store.close()


@contextmanager
def server(db: Path, *, latency_ms: int = 0) -> Iterator[str]:
    """``oauth2-sync registry serve`` on a free port (``latency_ms`` added to every
    answer); yields its ``/v1`` base URL."""
    proc = subprocess.Popen(
        # -q: no access lines, which would fill the unread pipe and stall the server.
        [sys.executable, "-m", "oauth2_sync", "registry", "serve", "-q", "--db", str(db),
         "--port", "0", "--latency-ms", str(latency_ms)],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"listening on (\S+)", line)
        if not match:
            raise RuntimeError(f"server did not start: {line!r}")
        url = match.group(1).rstrip("/")
        yield url if url.endswith("/v1") else f"{url}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def floor(base_url: str, files: list[Path], page_size: int) -> int:
    """A bare requests page loop plus CSafeLoader over the same files; returns the clients seen."""
    seen = page_loop(base_url, page_size, (API_ID, API_SECRET))
    loaded = 0
    for path in files:
        with path.open("rb") as stream:
            loaded += len(yaml.load(stream, Loader=yaml.CSafeLoader)["clients"])
    assert loaded == seen, (loaded, seen)
    return seen


def local_floor(files: list[Path]) -> int:
    """For the embedded store the floor is the YAML part only."""
    loaded = 0
    for path in files:
        with path.open("rb") as stream:
            loaded += len(yaml.load(stream, Loader=yaml.CSafeLoader)["clients"])
    return loaded


def timed(func: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def run_size(count: int, backend: str, parallelism: int) -> list[tuple[str, float, str]]:
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="plan-apply-") as tmp:
        root = Path(tmp)
        db = root / "registry.db"
        seed_store(db, count)
        context = server(db) if backend == "http" else _nothing(f"local:{db}")
        with context as url:
            os.environ["OAUTH2_SYNC_CLIENT_ID"] = API_ID
            os.environ["OAUTH2_SYNC_CLIENT_SECRET"] = API_SECRET
            settings_path = write_repository(root, count, registry_url=url)
            settings = load_settings(settings_path)
            files = settings.client_files()
            sink = open_sink(settings)

            def plan() -> Plan:
                with open_registry(settings) as registry:
                    return make_plan(settings, registry)

            def apply(made: Plan) -> None:
                with open_registry(settings) as registry:
                    check_preconditions(made, registry, sink)
                    report = apply_plan(made, registry, sink, parallelism=parallelism)
                assert report.ok, [r.line() for r in report.results if not r.ok][:3]

            t, made = timed(plan)
            assert made.summary.create == count
            rows.append(("plan, empty registry (all creates)", t, ""))
            t, _ = timed(lambda: apply(made))
            rows.append((f"apply {count} creates (parallelism {parallelism})", t,
                         f"{count / t:.0f} clients/s"))

            t_floor, seen = best_of(3, (
                (lambda: floor(url, files, settings.registry.page_size)) if backend == "http"
                else (lambda: local_floor(files))
            ))
            assert seen == count
            t_plan, unchanged = best_of(3, plan)
            assert not unchanged.has_changes and unchanged.no_op == count
            rows.append(("floor: requests page loop + CSafeLoader" if backend == "http"
                         else "floor: CSafeLoader", t_floor, ""))
            rows.append(("plan, no changes", t_plan, f"{t_plan / t_floor:.2f}x floor"))
            t_cli = _cli_plan(root, settings)
            rows.append(("`oauth2-sync plan` process, no changes", t_cli,
                         f"{t_cli / t_floor:.2f}x floor"))

            edited = _edit_share(files, 0.05)
            t, changed = timed(plan)
            assert changed.summary.update == edited, (changed.summary, edited)
            rows.append((f"plan, {edited} updates (5%)", t, ""))
            t, _ = timed(lambda: apply(changed))
            rows.append((f"apply {edited} updates (parallelism {parallelism})", t,
                         f"{edited / t:.0f} clients/s"))
    return rows


@contextmanager
def _nothing(value: str) -> Iterator[str]:
    yield value


def _cli_plan(root: Path, settings: Settings) -> float:
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "oauth2_sync", "--config", str(settings.path), "plan", "-q"],
            cwd=root, capture_output=True, text=True, check=False,
        )
        best = min(best, time.perf_counter() - start)
        assert done.returncode == 0, done.stderr
    return best


def _edit_share(files: list[Path], share: float) -> int:
    step = round(1 / share)
    edited = 0
    for path in files[::step]:
        text = path.read_text()
        path.write_text(text.replace("    name: Service ", "    name: Renamed service ", 1))
        edited += 1
    return edited


def bench_diff(count: int) -> list[tuple[str, float, str]]:
    from deepdiff import DeepDiff

    pairs = []
    for i in range(count):
        before = Client(f"acme-svc{i:06d}", f"Service {i}", "t@acme.example", "acme",
                        scopes=("read", "write"), access_token_ttl=3600)
        after = before._replace(name=f"Renamed {i}") if i % 20 == 0 else before
        pairs.append((before._replace(), after))

    def deep_all() -> int:
        return sum(1 for a, b in pairs if DeepDiff(a, b))

    def deep_changed() -> int:
        return sum(1 for a, b in pairs if a != b and DeepDiff(a, b))

    def direct() -> int:
        return sum(1 for a, b in pairs if a != b and diff_clients(a, b))

    t_all, n_all = best_of(1, deep_all)
    t_changed, n_changed = best_of(3, deep_changed)
    t_direct, n_direct = best_of(3, direct)
    assert n_all == n_changed == n_direct == count // 20
    return [
        ("DeepDiff on every pair", t_all, ""),
        ("equality, then DeepDiff on the 5% that differ", t_changed, ""),
        ("equality, then diff.diff_clients (what plan uses)", t_direct,
         f"{t_changed / t_direct:.0f}x faster than DeepDiff"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[1000, 10_000])
    parser.add_argument("--backend", choices=["http", "local"], default="http")
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--diff", action="store_true", help="measure the field differ only")
    args = parser.parse_args()
    for count in args.sizes:
        rows = bench_diff(count) if args.diff else run_size(count, args.backend, args.parallelism)
        title = "diff" if args.diff else f"backend {args.backend}"
        print(f"\n{count} clients, {title}")
        for label, seconds, note in rows:
            print(f"  {label:<52} {seconds:8.3f} s  {note}")


if __name__ == "__main__":
    main()
