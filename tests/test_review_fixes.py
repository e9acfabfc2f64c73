"""The findings of the outside attack review of the fixes of issues #12 and #13.

Each test reproduces one finding with real processes, real files and the local or the
reference registry; none mocks a request.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from configrepo import client, write_repo

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "examples" / "registry-seed.yaml"
STORE_SECRET = ROOT / "examples" / "ci" / "store-secret"
WITHHELD = "(output withheld: it may contain the secret)"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OAUTH2_SYNC_", "VAULT_"))}
    env.pop("CI", None)
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


def cli(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oauth2_sync", *args], cwd=root, env=env or clean_env(),
        capture_output=True, text=True, timeout=120, check=False,
    )


def local_repo(root: Path, secrets: dict[str, object], *ids: str) -> Path:
    registry = {"url": "local:.oauth2-sync/registry.db", "seed": str(SEED)}
    write_repo(root, [client(i) for i in ids or ("acme-reporting",)],
               extra={"registry": registry, "secrets": secrets})
    return root


# --- 1. a failing sink's output: no piece of the secret, ordinary words unmasked --------

SPLIT_SINK = r"""
import json, sys
s = json.loads(sys.stdin.read())["client_secret"]
open(sys.argv[1], "w").write(s)
kind = sys.argv[2]
if kind == "pieces":
    print("got", s[:15], s[15:30], s[30:], "rejected", file=sys.stderr)
elif kind == "xxd":
    h = s.encode().hex()
    print(" ".join(h[i:i + 4] for i in range(0, len(h), 4)), file=sys.stderr)
elif kind == "od":
    b = s.encode()
    print(" ".join(b[i:i + 2][::-1].hex() for i in range(0, len(b), 2)), file=sys.stderr)
else:
    print(list(s), file=sys.stderr)
sys.exit(3)
"""


@pytest.mark.parametrize("kind", ["pieces", "xxd", "od", "list"])
def test_review_1_a_sink_printing_the_secret_in_pieces_shows_no_piece(
    tmp_path: Path, kind: str
) -> None:
    seen = tmp_path / "seen"
    root = local_repo(tmp_path / "repo", {
        "command": [sys.executable, "-c", SPLIT_SINK, str(seen), kind]})
    done = cli(root, "-vv", "apply", "--auto-approve")
    assert done.returncode == 1
    secret = seen.read_text()
    assert len(secret) == 43
    output = done.stdout + done.stderr
    for i in range(len(secret) - 5):
        assert secret[i:i + 6] not in output
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("acme-reporting:")]
    assert line.startswith(
        f"acme-reporting: created, but its secret was not delivered (secret command "
        f"{sys.executable} exited with status 3 (secret of acme-reporting): {WITHHELD})"
    ), line


def test_review_1_the_kit_message_naming_its_variable_is_not_masked(tmp_path: Path) -> None:
    root = local_repo(tmp_path / "repo", {"command": [str(STORE_SECRET)]})
    done = cli(root, "apply", "--auto-approve",
               env=clean_env(OAUTH2_SYNC_SECRET_STORE="s3"))
    assert done.returncode == 1
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("acme-reporting:")]
    assert line.startswith(
        f"acme-reporting: created, but its secret was not delivered (secret command "
        f"{STORE_SECRET} exited with status 1 (secret of acme-reporting): store-secret: "
        "OAUTH2_SYNC_SECRET_STORE must be 'directory' or 'vault', not 's3')"
    ), line
