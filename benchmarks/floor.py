"""The floor of a plan, as a process of its own: what any tool must do at least.

python benchmarks/floor.py BASE_URL PAGE_SIZE [ROOT]

``yaml.CSafeLoader`` over every ``*.yaml`` file under ``ROOT/clients`` (default: the
working directory), then a bare ``requests`` loop over every page of
``GET BASE_URL/oauth2-clients`` with ``PAGE_SIZE`` clients a page (the benchmark passes
the largest the API allows), JSON decoded. Prints the number of clients seen in each.
Credentials come from ``OAUTH2_SYNC_CLIENT_ID``/``OAUTH2_SYNC_CLIENT_SECRET``.
"""

from __future__ import annotations

import glob
import os
import sys

import requests
import yaml


def page_loop(base_url: str, page_size: int, auth: tuple[str, str]) -> int:
    """A bare ``requests`` loop over every page of the clients; the clients seen (also
    the in-process floor of ``plan_apply.floor``)."""
    with requests.Session() as session:
        token = session.post(
            base_url.removesuffix("/v1") + "/oauth/token",
            data={"grant_type": "client_credentials"}, auth=auth, timeout=30,
        ).json()["access_token"]
        session.headers["Authorization"] = f"Bearer {token}"
        page, seen = 0, 0
        while True:
            body = session.get(
                f"{base_url}/oauth2-clients", params={"page": page, "pageSize": page_size},
                timeout=60,
            ).json()
            seen += len(body["list"])
            if seen >= body["total"] or not body["list"]:
                break
            page += 1
    return seen


def main() -> None:
    base_url, page_size = sys.argv[1], int(sys.argv[2])
    root = sys.argv[3] if len(sys.argv) > 3 else "."
    loaded = 0
    for path in glob.glob(os.path.join(root, "clients", "**", "*.yaml"), recursive=True):
        with open(path, "rb") as stream:
            loaded += len(yaml.load(stream, Loader=yaml.CSafeLoader)["clients"])
    seen = page_loop(
        base_url, page_size,
        (os.environ["OAUTH2_SYNC_CLIENT_ID"], os.environ["OAUTH2_SYNC_CLIENT_SECRET"]),
    )
    print(loaded, seen)


if __name__ == "__main__":
    main()
