"""The benchmark table of issues #8 and #14: every figure beside its floor or target.

python benchmarks/run.py [--quick] [--sizes 1000 10000 100000] [--pairs 5]
                         [--apply-clients 1000] [--latency-ms 10] [--json FILE]

For each size it generates a config repository on the realistic mix
(``common.write_mix_repository``: one to seven clients a file, every field shape, 3 in
8 clients drawing a warning), puts the same clients into a fresh store, starts
``oauth2-sync registry serve`` on 127.0.0.1 and measures, as whole processes
alternated in the same run, median of ``--pairs`` pairs:

- the floor process (``benchmarks/floor.py``): ``yaml.CSafeLoader`` over the same
  files plus a bare ``requests`` loop over every page of the client list, with the
  largest page the API allows (the ``pageSize`` maximum of the shipped OpenAPI);
- ``oauth2-sync plan -q`` with no changes;

and the peak memory of that plan in a subprocess (the high-water mark of its resident
set, ``VmHWM``, after the modules are imported and the settings loaded, then after the
plan), per client. Then the time per client at 100,000 against 10,000, ``plan`` of the
shipped examples against the embedded ``local:`` registry, ``validate`` of 10,000
clients of the mix against ``CSafeLoader`` over the same files (in process,
alternated), ``apply`` of ``--apply-clients`` creates against a server that adds
``--latency-ms`` to every answer at parallelism 1 and 8, and start-up. ``--quick``
skips 100,000 clients and apply. It prints one table: figure, value, floor, ratio,
target, pass/fail.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))

from common import best_of, write_mix_repository, write_repository
from plan_apply import API_ID, API_SECRET, seed_store, server

from oauth2_sync.apply import apply_plan, check_preconditions
from oauth2_sync.journal import Journal
from oauth2_sync.model import Client
from oauth2_sync.plan import make_plan
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
import requests, yaml
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


def api_max_page_size() -> int:
    """The largest ``pageSize`` the shipped OpenAPI contract allows for the client list."""
    spec = yaml.safe_load((ROOT / "oauth2_sync/schemas/registry-api.openapi.yaml").read_text())
    parameters = spec["paths"]["/v1/oauth2-clients"]["get"]["parameters"]
    size: int = next(p for p in parameters if p["name"] == "pageSize")["schema"]["maximum"]
    return size


def _process_env() -> dict[str, str]:
    """The environment of the timed processes: byte code cached, as after any install."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["NO_COLOR"] = "1"
    return env


def _timed_process(command: list[str], cwd: Path, codes: tuple[int, ...] = (0,)) -> float:
    """Wall seconds of one whole process, which must exit with one of ``codes``."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=_process_env(), capture_output=True, check=False)
    seconds = time.perf_counter() - start
    assert done.returncode in codes, (command, done.returncode, done.stderr[-2000:])
    return seconds


def alternated(
    pairs: int, first: Callable[[], float], second: Callable[[], float]
) -> tuple[float, float]:
    """Median seconds of ``first`` and of ``second`` over ``pairs`` alternated pairs,
    after one unmeasured pair (page cache, byte code)."""
    first(), second()
    a, b = [], []
    for _ in range(pairs):
        a.append(first())
        b.append(second())
    return statistics.median(a), statistics.median(b)


def _tool() -> list[str]:
    program = shutil.which("oauth2-sync", path=os.path.dirname(sys.executable))
    return [program] if program else [sys.executable, "-m", "oauth2_sync"]


def plan_figures(count: int, pairs: int) -> tuple[list[Row], float, float]:
    """Plan with no changes at ``count`` clients of the mix beside its floor, as whole
    processes, and the plan's peak memory.

    Returns the rows and the seconds per client of the plan and of the floor.
    """
    with tempfile.TemporaryDirectory(prefix=f"bench-plan-{count}-") as tmp:
        root = Path(tmp)
        db = root / "registry.db"
        seed_store(db, count)
        files = load_settings(write_mix_repository(root, count)).client_files()
        store_clients(db, files)
        with server(db) as url:
            settings = load_settings(write_repository_settings(root, url))
            floor_command = [
                sys.executable, str(ROOT / "benchmarks/floor.py"), url, str(api_max_page_size()),
            ]
            t_plan, t_floor = alternated(
                pairs,
                lambda: _timed_process([*_tool(), "plan", "-q"], root),
                lambda: _timed_process(floor_command, root),
            )
            memory = json.loads(subprocess.run(
                [sys.executable, "-c", MEMORY_PROBE, str(settings.path)], cwd=root,
                capture_output=True, text=True, check=True, env=os.environ,
            ).stdout)
            assert memory["no_op"] == count, memory
    ratio = t_plan / t_floor
    per_client = (memory["peak_kib"] - memory["base_kib"]) / count
    rows = [
        Row(f"plan, no changes, {count:,} clients (mix)", _s(t_plan), _s(t_floor),
            f"{ratio:.2f}x", "<= 1.3x floor", ratio <= 1.3),
        Row(f"plan peak memory, {count:,} clients (mix)",
            f"{per_client:.2f} KiB/client", f"{memory['base_kib'] / 1024:.0f} MiB baseline",
            f"+{(memory['peak_kib'] - memory['base_kib']) / 1024:.0f} MiB",
            "< 4 KiB/client" if count >= 100_000 else "", per_client < 4 if count >= 100_000
            else None),
    ]
    return rows, t_plan / count, t_floor / count


def examples_figure(pairs: int) -> Row:
    """``oauth2-sync plan`` of the shipped examples against the embedded registry."""
    with tempfile.TemporaryDirectory(prefix="bench-examples-") as tmp:
        root = Path(tmp) / "examples"
        shutil.copytree(ROOT / "examples", root)
        command = [*_tool(), "plan"]
        _timed_process(command, root, (2,))  # creates the store from the seed
        seconds = statistics.median(
            _timed_process(command, root, (2,)) for _ in range(max(pairs, 5))
        )
    return Row("plan of the examples, `local:` registry", f"{seconds * 1000:.0f} ms", "", "",
               "< 200 ms", seconds < 0.200)


def validate_figure(count: int, pairs: int) -> Row:
    """``validate`` of ``count`` clients of the mix beside ``CSafeLoader`` on the same
    files, in process, alternated."""
    from oauth2_sync.validation import validate

    with tempfile.TemporaryDirectory(prefix=f"bench-validate-{count}-") as tmp:
        settings = load_settings(write_mix_repository(Path(tmp), count))
        files = settings.client_files()

        def floor() -> float:
            start = time.perf_counter()
            n = 0
            for path in files:
                with path.open("rb") as stream:
                    n += len(yaml.load(stream, Loader=yaml.CSafeLoader)["clients"])
            assert n == count
            return time.perf_counter() - start

        def ours() -> float:
            start = time.perf_counter()
            result = validate(settings)
            assert not result.errors and len(result.clients) == count
            return time.perf_counter() - start

        t_ours, t_floor = alternated(pairs, ours, floor)
    ratio = t_ours / t_floor
    return Row(f"validate, {count:,} clients (mix), in process", _s(t_ours), _s(t_floor),
               f"{ratio:.2f}x", "<= 1.2x CSafeLoader", ratio <= 1.2)


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
    command = _tool()
    env = _process_env()

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
    parser.add_argument("--quick", action="store_true", help="skip 100,000 clients and apply")
    parser.add_argument("--sizes", nargs="*", type=int, default=None,
                        help="default: 1000 10000 100000 (1000 10000 with --quick)")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--apply-clients", type=int, default=1000)
    parser.add_argument("--latency-ms", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None, help="also save the figures here")
    args = parser.parse_args()
    sizes = args.sizes or ([1000, 10_000] if args.quick else [1000, 10_000, 100_000])
    os.environ["OAUTH2_SYNC_CLIENT_ID"] = API_ID
    os.environ["OAUTH2_SYNC_CLIENT_SECRET"] = API_SECRET

    rows: list[Row] = []
    per_client: dict[int, float] = {}
    floor_per_client: dict[int, float] = {}
    for count in sizes:
        found, per_client[count], floor_per_client[count] = plan_figures(count, args.pairs)
        rows += found
    if 10_000 in per_client and 100_000 in per_client:
        for label, figures, target in (
            ("plan", per_client, 1.1), ("floor (for comparison)", floor_per_client, None),
        ):
            growth = figures[100_000] / figures[10_000]
            rows.append(Row(
                f"{label} time per client, 100,000 vs 10,000",
                f"{figures[100_000] * 1e6:.0f} us", f"{figures[10_000] * 1e6:.0f} us",
                f"{growth:.2f}x", f"<= {target}x" if target else "",
                growth <= target if target else None,
            ))
    rows.append(examples_figure(args.pairs))
    rows.append(validate_figure(10_000, args.pairs))
    if not args.quick:
        rows += apply_figures(args.apply_clients, args.latency_ms)
    rows += startup_figures(args.pairs)

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
