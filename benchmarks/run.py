"""The benchmark table of issue #8: every figure beside its floor or target, in one run.

python benchmarks/run.py [--sizes 10000 100000] [--apply-clients 1000] [--latency-ms 10]
                         [--runs 3] [--json FILE]

For each size it generates a config repository (one file per client,
``common.write_repository``), puts the same clients into a fresh store, starts
``oauth2-sync registry serve`` on 127.0.0.1 and measures, best of ``--runs``:

- the floor: a bare ``requests`` loop over every page of the client list plus
  ``yaml.CSafeLoader`` over the same files, in one process (``plan_apply.floor``);
- ``plan`` with no changes, in process, as the command runs it (``make_plan``);
- the peak memory of that plan, in a subprocess (the high-water mark of its resident
  set, ``VmHWM``, after the modules are imported and the settings loaded, then after
  the plan), per client.

Then ``apply`` of ``--apply-clients`` creates against a server that adds
``--latency-ms`` to every answer, at parallelism 1 and 8 (each on a fresh store), and
the start-up of ``oauth2-sync --help`` and of ``oauth2-sync validate`` in ``examples/``.
It prints one table: figure, value, floor, ratio, target, pass/fail.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))

from common import best_of, write_repository
from plan_apply import API_ID, API_SECRET, floor, seed_store, server

from oauth2_sync.apply import apply_plan, check_preconditions
from oauth2_sync.journal import Journal
from oauth2_sync.model import Client
from oauth2_sync.plan import Plan, make_plan
from oauth2_sync.refserver.store import RegistryStore
from oauth2_sync.registry import open_registry, wire
from oauth2_sync.settings import load_settings
from oauth2_sync.sink import open_sink

ROOT = Path(__file__).resolve().parent.parent
PARTNER_IDS = {"acme": 100, "globex": 101, "initech": 102}
"""The ids ``plan_apply.seed_store`` gives the partners of ``common.PARTNERS``."""

MEMORY_PROBE = """
import json, sys
from pathlib import Path
import requests, yaml, jsonschema
from oauth2_sync.plan import make_plan
from oauth2_sync.registry import open_registry
from oauth2_sync.registry.http import HttpRegistry
from oauth2_sync.settings import load_settings

def high_water_kib():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent process.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

settings = load_settings(Path(sys.argv[1]))
base = high_water_kib()
with open_registry(settings) as registry:
    plan = make_plan(settings, registry)
peak = high_water_kib()
print(json.dumps({"base_kib": base, "peak_kib": peak, "no_op": plan.no_op}))
"""


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    figure: str
    value: str
    floor: str
    ratio: str
    target: str
    ok: bool | None
    """None: a figure for orientation, without a target."""


def _s(seconds: float) -> str:
    return f"{seconds:.3f} s"


def store_clients(db: Path, files: list[Path]) -> None:
    """Put exactly the clients of ``files`` into the store, so that plan finds no change."""
    bodies = []
    for path in files:
        for entry in yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)["clients"]:
            client = Client.from_document(entry)
            bodies.append(wire.client_to_wire(client, PARTNER_IDS[client.partner]))
    store = RegistryStore(db)
    store.bulk_create(bodies, "benchmark")
    store.close()


def plan_figures(count: int, runs: int) -> tuple[list[Row], float, float]:
    """Plan with no changes at ``count`` clients beside its floor, and its peak memory.

    Returns the rows and the seconds per client of the plan and of the floor.
    """
    with tempfile.TemporaryDirectory(prefix=f"bench-plan-{count}-") as tmp:
        root = Path(tmp)
        db = root / "registry.db"
        seed_store(db, count)
        files = load_settings(write_repository(root, count)).client_files()
        store_clients(db, files)
        with server(db) as url:
            settings = load_settings(write_repository_settings(root, url))

            def plan() -> Plan:
                with open_registry(settings) as registry:
                    return make_plan(settings, registry)

            # Alternate, so that both see the same state of the machine.
            t_floor, t_plan = float("inf"), float("inf")
            for _ in range(runs):
                seconds, seen = best_of(1, lambda: floor(url, files, settings.registry.page_size))
                assert seen == count, seen
                t_floor = min(t_floor, seconds)
                seconds, made = best_of(1, plan)
                assert not made.has_changes and made.no_op == count, made.summary
                t_plan = min(t_plan, seconds)
            memory = json.loads(subprocess.run(
                [sys.executable, "-c", MEMORY_PROBE, str(settings.path)], cwd=root,
                capture_output=True, text=True, check=True, env=os.environ,
            ).stdout)
    ratio = t_plan / t_floor
    per_client = (memory["peak_kib"] - memory["base_kib"]) / count
    rows = [
        Row(f"plan, no changes, {count:,} clients", _s(t_plan), _s(t_floor), f"{ratio:.2f}x",
            "<= 1.5x floor", ratio <= 1.5),
        Row(f"plan peak memory, {count:,} clients",
            f"{per_client:.2f} KiB/client", f"{memory['base_kib'] / 1024:.0f} MiB baseline",
            f"+{(memory['peak_kib'] - memory['base_kib']) / 1024:.0f} MiB",
            "< 4 KiB/client" if count >= 100_000 else "", per_client < 4 if count >= 100_000
            else None),
    ]
    return rows, t_plan / count, t_floor / count


def write_repository_settings(root: Path, url: str) -> Path:
    """Point the settings of a generated repository at ``url`` (the files stay)."""
    settings = root / "oauth2-sync.yaml"
    text = settings.read_text()
    start = text.index("url: ") + len("url: ")
    end = text.index("\n", start)
    settings.write_text(text[:start] + url + text[end:])
    return settings


def apply_figures(count: int, latency_ms: int) -> list[Row]:
    """``count`` creates at parallelism 1 and 8 against a server ``latency_ms`` away."""
    seconds: dict[int, float] = {}
    for parallelism in (1, 8):
        with tempfile.TemporaryDirectory(prefix=f"bench-apply-{parallelism}-") as tmp:
            root = Path(tmp)
            db = root / "registry.db"
            seed_store(db, count)
            with server(db, latency_ms=latency_ms) as url:
                settings = load_settings(write_repository(root, count, registry_url=url))
                with open_registry(settings) as registry:
                    made = make_plan(settings, registry)
                    assert made.summary.create == count
                    sink = open_sink(settings)
                    check_preconditions(made, registry, sink)
                    start = time.perf_counter()
                    report = apply_plan(
                        made, registry, sink, parallelism=parallelism,
                        journal=Journal.beside(settings.root),
                    )
                    seconds[parallelism] = time.perf_counter() - start
                assert report.ok, [r.line() for r in report.results if not r.ok][:3]
    speedup = seconds[1] / seconds[8]
    return [
        Row(f"apply {count:,} creates, {latency_ms} ms latency, parallelism 1",
            _s(seconds[1]), "", "", "", None),
        Row(f"apply {count:,} creates, {latency_ms} ms latency, parallelism 8",
            _s(seconds[8]), _s(seconds[1]), f"{speedup:.2f}x faster", ">= 5x faster",
            speedup >= 5),
    ]


def startup_figures(runs: int) -> list[Row]:
    """Wall time of ``oauth2-sync --help`` and of ``validate`` in ``examples/``."""
    program = shutil.which("oauth2-sync", path=os.path.dirname(sys.executable))
    command = [program] if program else [sys.executable, "-m", "oauth2_sync"]
    # Byte code cached, as after any install (PYTHONDONTWRITEBYTECODE would defeat it).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["NO_COLOR"] = "1"

    def timed(*args: str) -> Callable[[], int]:
        def once() -> int:
            done = subprocess.run(
                [*command, *args], cwd=ROOT / "examples", env=env, capture_output=True,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            return done.returncode
        return once

    rows = []
    for label, args, limit in (
        ("`oauth2-sync --help`", ("--help",), 0.150),
        ("`oauth2-sync validate` (examples)", ("validate",), 0.300),
    ):
        timed(*args)()  # warm the page cache and the byte code
        seconds, _ = best_of(max(runs, 5), timed(*args))
        rows.append(Row(f"start-up: {label}", f"{seconds * 1000:.0f} ms", "", "",
                        f"< {limit * 1000:.0f} ms", seconds < limit))
    return rows


def machine() -> dict[str, str]:
    """Where the figures come from."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| figure | value | floor | ratio | target | result |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for row in rows:
        result = "" if row.ok is None else ("pass" if row.ok else "FAIL")
        lines.append(
            f"| {row.figure} | {row.value} | {row.floor} | {row.ratio} | {row.target} "
            f"| {result} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run every benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", type=int, default=[10_000, 100_000])
    parser.add_argument("--apply-clients", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also save the figures here")
    args = parser.parse_args()
    os.environ["OAUTH2_SYNC_CLIENT_ID"] = API_ID
    os.environ["OAUTH2_SYNC_CLIENT_SECRET"] = API_SECRET

    rows: list[Row] = []
    per_client: dict[int, float] = {}
    floor_per_client: dict[int, float] = {}
    for count in args.sizes:
        found, per_client[count], floor_per_client[count] = plan_figures(
            count, args.runs if count < 100_000 else 2
        )
        rows += found
    if 10_000 in per_client and 100_000 in per_client:
        for label, figures, target in (
            ("plan", per_client, 1.2), ("floor (for comparison)", floor_per_client, None),
        ):
            growth = figures[100_000] / figures[10_000]
            rows.append(Row(
                f"{label} time per client, 100,000 vs 10,000",
                f"{figures[100_000] * 1e6:.0f} us", f"{figures[10_000] * 1e6:.0f} us",
                f"{growth:.2f}x", f"<= {target}x" if target else "",
                growth <= target if target else None,
            ))
    rows += apply_figures(args.apply_clients, args.latency_ms)
    rows += startup_figures(args.runs)

    where = machine()
    print(f"Machine: {where['cpus']} CPUs ({where['cpu']}), Python {where['python']}, "
          f"{where['system']}\n")
    print(table(rows))
    if args.json is not None:
        args.json.write_text(json.dumps(
            {"machine": where, "rows": [asdict(r) for r in rows]}, indent=2
        ) + "\n")
    if not all(r.ok for r in rows if r.ok is not None):
        sys.exit(1)


if __name__ == "__main__":
    main()
