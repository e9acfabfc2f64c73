"""Fuzz the loader and the validator with a real budget (outside CI).

python benchmarks/fuzz.py [--minutes 15] [--seed N]

Runs the properties of ``tests/test_fuzz_validation.py`` (arbitrary text, bytes, YAML
structures, client entries) and three more (YAML token soup, hostile scalars in client
fields, arbitrary settings files) with Hypothesis, round after round with fresh random
draws, until the budget is spent. Each property holds when only the project's own
errors come out (``InputError`` with positioned diagnostics), no example takes longer
than ``--slow`` seconds (a hang), and the process's peak memory stays bounded (printed
at the end). The first failure of a property is printed, shrunk, with its input.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_fuzz_validation import KEYS, VALUES, check, structures

from oauth2_sync.errors import InputError
from oauth2_sync.settings import load_settings

TOKENS = [
    "clients:", "\n", "  ", "- ", "client_id: ", "name: ", "partner: ", "scopes: ",
    "grant_types: ", "redirect_uris: ", "access_token_ttl: ", "refresh_token_ttl: ",
    "acme-x", "acme", "read", "write", "implicit", "never", "12h", "-1", "0", "1e999",
    "2001-13-45", "2001-01-01", "2001-01-01 10:00:00", "0x1f", "0o17", "1_000", "1:30",
    ".inf", ".nan", "~", "null", "yes", "No", "!!str ", "!!int ", "!!bool ", "!!float ",
    "!!binary ", "!!timestamp ", "!!set ", "!!omap ", "!!pairs ", "!!map ", "!!seq ",
    "!!python/object:os.system ", "!custom ", "&a ", "*a", "[", "]", "{", "}", ", ",
    "? ", ": ", "<<: ", "|", ">", "'", '"', "\\", "\t", "# c", "---", "...",
    "%YAML 1.1", "%TAG ! tag:x,2000:", "\x1b[31m", "\u202e", "\ufeff", "\x00", "\r\n",
    "https://a.example/cb", "http://x/cb#f", "a@b.c", "é", "😀",
]
HOSTILE = st.one_of(
    st.sampled_from(VALUES),
    st.text(max_size=50),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(st.text(max_size=10), max_size=5),
    st.sampled_from(["acme-" + "x" * 200, "x" * 10_000, "a," * 500, "*", "\n", ""]),
)


def write_and_check(tmp: Path) -> Callable[[bytes], None]:
    return lambda raw: check(raw, tmp)


def check_settings(tmp: Path) -> Callable[[dict[str, Any]], None]:
    def body(data: dict[str, Any]) -> None:
        path = tmp / "oauth2-sync.yaml"
        path.write_text(yaml.safe_dump(data))
        try:
            load_settings(path)
        except InputError as exc:
            assert all(d.line >= 1 and d.column >= 1 for d in exc.diagnostics)

    return body


CLIENT = st.fixed_dictionaries(
    {"client_id": st.sampled_from(["acme-x", "acme-y"]), "name": st.just("N"),
     "email": st.just("a@acme.example"), "partner": st.just("acme")},
    optional={key: HOSTILE for key in KEYS[5:]},
)
SECTIONS = st.sampled_from(
    ["registry", "clients", "teams", "policy", "safety", "secrets", "prune", "drift"]
)
PROPERTIES: dict[str, tuple[st.SearchStrategy[Any], Callable[[Path], Callable[[Any], None]]]] = {
    # The properties of tests/test_fuzz_validation.py, with larger inputs.
    "arbitrary text": (
        st.text(max_size=2000).map(lambda t: t.encode("utf-8", "surrogatepass")),
        write_and_check,
    ),
    "arbitrary bytes": (st.binary(max_size=2000), write_and_check),
    "arbitrary structures": (
        structures.map(lambda d: yaml.safe_dump(d).encode()), write_and_check
    ),
    "arbitrary clients": (
        st.dictionaries(st.sampled_from(KEYS[1:]), structures, max_size=10).map(
            lambda c: yaml.safe_dump({"clients": [c]}).encode()
        ),
        write_and_check,
    ),
    # And more: YAML syntax soup, hostile values in valid-looking clients, settings.
    "YAML token soup": (
        st.lists(st.sampled_from(TOKENS), max_size=80).map(
            lambda parts: "".join(parts).encode("utf-8", "surrogatepass")
        ),
        write_and_check,
    ),
    "hostile client fields": (
        st.lists(CLIENT, max_size=4).map(lambda c: yaml.safe_dump({"clients": c}).encode()),
        write_and_check,
    ),
    "arbitrary settings": (st.dictionaries(SECTIONS, structures, max_size=8), check_settings),
}


def _property(
    name: str,
    strategy: st.SearchStrategy[Any],
    body: Callable[[Any], None],
    *,
    budget: int,
    slow: float,
    examples: dict[str, int],
    slowest: dict[str, float],
) -> Callable[[], None]:
    """One round of ``body`` over ``budget`` draws of ``strategy``, each timed."""

    @settings(
        max_examples=budget, deadline=None, database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(value=strategy)
    def prop(value: Any) -> None:
        start = time.perf_counter()
        body(value)
        took = time.perf_counter() - start
        examples[name] += 1
        slowest[name] = max(slowest[name], took)
        assert took < slow, f"one example took {took:.1f} s (a hang?)"

    return prop


def main() -> None:
    """Fuzz until the budget is spent; exit 1 if any property failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--round", type=int, default=2000, help="examples per round")
    parser.add_argument("--slow", type=float, default=5.0, help="seconds that count as a hang")
    args = parser.parse_args()
    deadline = time.monotonic() + args.minutes * 60
    examples = dict.fromkeys(PROPERTIES, 0)
    slowest = dict.fromkeys(PROPERTIES, 0.0)
    failures: dict[str, str] = {}
    rounds = 0
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        while time.monotonic() < deadline:
            rounds += 1
            for name, (strategy, make) in PROPERTIES.items():
                if name in failures or time.monotonic() >= deadline:
                    continue
                body = make(Path(tmp))
                prop = _property(
                    name, strategy, body, budget=args.round, slow=args.slow,
                    examples=examples, slowest=slowest,
                )
                try:
                    prop()
                except Exception:
                    failures[name] = traceback.format_exc(limit=8)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"budget: {args.minutes:g} min, {rounds} rounds of up to {args.round} examples")
    for name in PROPERTIES:
        verdict = "FAILED" if name in failures else "ok"
        print(f"  {name:<24} {examples[name]:>8} examples  slowest {slowest[name] * 1000:7.1f} ms"
              f"  {verdict}")
    print(f"peak memory (max RSS): {peak / 1024:.0f} MiB")
    for name, text in failures.items():
        print(f"\n--- {name} ---\n{text}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
