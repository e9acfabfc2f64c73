"""Listing clients over HTTP: ``HttpRegistry.list_clients()`` beside a bare loop.

python benchmarks/list_clients.py [--clients N] [--page-size M] [--runs R]

Seeds N clients (default 10,000) straight into a fresh store file, starts
``oauth2-sync registry serve`` on it (127.0.0.1, a free port), then times, best of R:

- the floor: one ``requests.Session`` fetching every page of
  ``GET /v1/oauth2-clients?page=N&pageSize=M`` and decoding the JSON;
- ``HttpRegistry.list_clients()``: the same pages plus the partner list, conversion to
  the normal form (``RemoteClient``) and the ETag/version bookkeeping.

Also prints the server-side cost of one page and of the whole list without paging.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from common import best_of

from oauth2_sync.refserver.seed import load_seed
from oauth2_sync.refserver.store import RegistryStore
from oauth2_sync.registry.http import Credentials, HttpRegistry
from oauth2_sync.secret import Secret

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "examples" / "registry-seed.yaml"
CI = ("oauth2-sync-ci", "ci-secret-for-local-tests")
PARTNERS = ((101, "acme"), (102, "globex"), (103, "initech"))


def seed_store(db: Path, count: int) -> None:
    """``count`` realistic clients, written in one transaction."""
    store = RegistryStore(db)
    store.apply_seed(load_seed(SEED))
    bodies: list[dict[str, Any]] = []
    for i in range(count):
        partner_id, subdomain = PARTNERS[i % len(PARTNERS)]
        body: dict[str, Any] = {
            "clientId": f"{subdomain}-svc{i:06d}",
            "name": f"Service {i}",
            "email": f"team{i % 97}@{subdomain}.example",
            "partnerId": partner_id,
        }
        if i % 2:
            body["grantTypes"] = ["authorization_code", "refresh_token"]
            body["redirectUri"] = f"https://app{i}.{subdomain}.example/cb,http://127.0.0.1:8400/cb"
            body["accessTokenValiditySeconds"] = 3600
        bodies.append(body)
    store.bulk_create(bodies, "benchmark")
    store.close()


@contextmanager
def server(db: Path) -> Iterator[str]:
    """``registry serve`` on ``db``; yields the ``/v1`` base URL."""
    proc = subprocess.Popen(
        # -q: no access lines, which would fill the unread pipe and stall the server.
        [sys.executable, "-m", "oauth2_sync", "registry", "serve", "-q", "--db", str(db),
         "--port", "0"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"listening on (\S+)", line)
        if match is None:
            raise SystemExit(f"server did not start: {line}{proc.stderr.read()}")
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def bare_loop(base: str, token: str, page_size: int) -> int:
    """Every page with a plain session: the floor."""
    count = 0
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        page = 0
        while True:
            body = session.get(
                f"{base}/oauth2-clients", params={"page": page, "pageSize": page_size},
                timeout=30,
            ).json()
            count += len(body["list"])
            page += 1
            if len(body["list"]) < page_size or page * page_size >= body["total"]:
                return count


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "registry.db"
        started = time.perf_counter()
        seed_store(db, args.clients)
        seconds = time.perf_counter() - started
        print(f"seeded {args.clients} clients into the store in {seconds:.2f} s")
        with server(db) as base:
            token = requests.post(
                base[: -len("/v1")] + "/oauth/token", data={"grant_type": "client_credentials"},
                auth=CI, timeout=10,
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            one_page, _ = best_of(args.runs, lambda: requests.get(
                f"{base}/oauth2-clients", params={"page": 0, "pageSize": args.page_size},
                headers=headers, timeout=30,
            ).json())
            unpaged, _ = best_of(args.runs, lambda: requests.get(
                f"{base}/oauth2-clients", headers=headers, timeout=60,
            ).json())
            floor, count = best_of(args.runs, lambda: bare_loop(base, token, args.page_size))
            assert count == args.clients, count
            registry = HttpRegistry(base, Credentials(CI[0], Secret(CI[1])),
                                    page_size=args.page_size)
            registry.list_partners()  # token and connection warm, as in the floor
            adapter, listed = best_of(args.runs, registry.list_clients)
            assert len(listed) == args.clients, len(listed)
            registry.close()

    pages = -(-args.clients // args.page_size)
    print(f"one page of {args.page_size} (GET + JSON decode):   {one_page * 1000:7.1f} ms")
    print(f"all {args.clients} without paging (one GET):        {unpaged * 1000:7.1f} ms")
    print(f"bare requests loop, {pages} pages:                {floor * 1000:7.1f} ms")
    print(f"HttpRegistry.list_clients(), {pages} pages:        {adapter * 1000:7.1f} ms")
    print(f"ratio adapter / bare loop:                   {adapter / floor:7.2f}x")


if __name__ == "__main__":
    main()
