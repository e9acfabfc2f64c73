"""The CI kit: the README tutorial, the shipped CI definitions, pre-commit hooks, completion.

- The tutorial's ```sh blocks run in order in one bash session against a reference server
  started here (its port replaces the tutorial's 8080). Each command's exit status is
  checked (``# exit N`` in the README, else 0), and a ```text block right after a shell
  block must appear, line by line and in order, in the output of that block's last
  command (``...`` skips lines). Commands marked ``(not run by tests)`` are only parsed.
- The GitHub workflows run job by job as GitHub's runner would: ``run:`` steps in bash
  with ``${{ ... }}`` replaced from the test's variables, secrets and event, and the
  ``actions/github-script`` steps in node against an in-memory stand-in of the few
  GitHub REST calls they make (the only way to run them off GitHub), so that the sticky
  comment and the drift issue are checked too. The GitLab jobs run their scripts the same
  way, against the reference server over HTTP with the seed's read-only and read-write
  credentials, and a loopback stand-in of GitLab's notes API. New client secrets go to a
  loopback stand-in of Vault's KV v2 API.
- Every ``oauth2-sync`` command line of the README and the CI files is parsed by the
  real click command tree (``oauth2_sync.cli.cli``): an unknown command, option or value
  fails.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import click
import pytest
import requests
import yaml
from conftest import RegistryServer
from oidc_peer import INITIAL_ACCESS_TOKEN, running_peer

from oauth2_sync.cli import cli
from oauth2_sync.refserver.store import RegistryStore
from oauth2_sync.registry.local import LocalRegistry
from oauth2_sync.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
README = ROOT / "README.md"
WORKFLOWS = EXAMPLES / ".github" / "workflows"
GITLAB_CI = EXAMPLES / ".gitlab-ci.yml"
STORE_SECRET = EXAMPLES / "ci" / "store-secret"
NOT_RUN = "(not run by tests)"
INSTALL_STEP = "Install oauth2-sync"
PLACEHOLDER = "git.example.com/YOUR-ORG/oauth2-sync"
TUTORIAL_ADDRESS = "127.0.0.1:8080"
EXAMPLE_IDS = (
    "acme-billing-sync", "acme-mobile-app", "acme-reporting", "acme-web-portal",
    "globex-analytics", "globex-etl", "globex-partner-portal",
    "initech-batch", "initech-intranet", "initech-kiosk", "initech-legacy-spa",
    "initech-tps-reports",
)
PLAN_MARKER = "<!-- oauth2-sync-plan -->"
DRIFT_LABEL = "oauth2-sync-drift"
TIMEOUT = 120


# --- the environment every script runs in -------------------------------------


@pytest.fixture(scope="module")
def bin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``oauth2-sync`` and ``python3`` on PATH: this checkout, this interpreter."""
    folder = tmp_path_factory.mktemp("bin")
    wrapper = folder / "oauth2-sync"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m oauth2_sync "$@"\n')
    wrapper.chmod(0o755)
    (folder / "python3").symlink_to(sys.executable)
    (folder / "python").symlink_to(sys.executable)
    return folder


def clean_env(bin_dir: Path) -> dict[str, str]:
    """The test process's environment without anything a CI system or the user set."""
    prefixes = ("OAUTH2_SYNC_", "_OAUTH2_SYNC_", "VAULT_", "GIT_", "GITHUB_", "GITLAB_", "CI_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes) and k != "CI"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        GIT_AUTHOR_NAME="Kit Test", GIT_AUTHOR_EMAIL="kit@example.test",
        GIT_COMMITTER_NAME="Kit Test", GIT_COMMITTER_EMAIL="kit@example.test",
        GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1",
    )
    return env


def copy_examples(target: Path) -> Path:
    """A fresh copy of the example config repository (no store, no secrets)."""
    shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns(".oauth2-sync", ".secrets"))
    return target


def bash(script: str, cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``script`` in bash as CI runners start it (``-eo pipefail``), output combined."""
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd,
        env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT, check=False,
    )


# --- shell text: commands, heredocs, oauth2-sync invocations -------------------


HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_]\w*)\1")
EXPECT_EXIT = re.compile(r"#\s*exit\s+(\d+)\b")
OPERATORS = {"|", "||", "&&", ";", "&", "(", ")", ";;", "!"}
SHELL_KEYWORDS = {"if", "then", "elif", "else", "do", "while", "until", "{", "time", "exec"}


@dataclasses.dataclass(frozen=True)
class ShellCommand:
    """One command of a shell text: its head (continuation lines) and heredoc bodies."""

    text: str
    head: str
    line: int
    expect: int
    run: bool


def split_commands(lines: Sequence[str], first_line: int, run: bool = True) -> list[ShellCommand]:
    """The commands of ``lines``: backslash continuations and open quotes join lines, a
    heredoc's body belongs to its command, comment lines are skipped."""
    commands: list[ShellCommand] = []
    i = 0
    while i < len(lines):
        if not lines[i].strip() or lines[i].lstrip().startswith("#"):
            i += 1
            continue
        start = i
        head = [lines[i]]
        while head[-1].endswith("\\") or not _complete(head):
            i += 1
            assert i < len(lines), f"line {first_line + start}: unterminated command"
            head.append(lines[i])
        body: list[str] = []
        heredoc = HEREDOC.search("\n".join(head))
        if heredoc:
            while not body or body[-1].strip() != heredoc.group(2):
                i += 1
                assert i < len(lines), f"line {first_line + start}: unterminated heredoc"
                body.append(lines[i])
        i += 1
        expect = EXPECT_EXIT.search(head[-1])
        head_text = "\n".join(head)
        commands.append(
            ShellCommand(
                text="\n".join(head + body), head=head_text, line=first_line + start,
                expect=int(expect.group(1)) if expect else 0,
                run=run and NOT_RUN not in head_text,
            )
        )
    return commands


def _complete(head: Sequence[str]) -> bool:
    try:
        shlex.split("\n".join(head), comments=True)
    except ValueError:
        return False  # an open quote: the command goes on
    return True


def invocations(shell: str) -> list[list[str]]:
    """The argument lists of every ``oauth2-sync`` command in a shell text."""
    found: list[list[str]] = []
    for command in split_commands(shell.splitlines(), 1):
        lexer = shlex.shlex(command.head.replace("\\\n", " "), posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        simple: list[str] = []
        for token in [*lexer, ";"]:
            if token not in OPERATORS:
                simple.append(token)
                continue
            words = _words(simple)
            if words and words[0] == "oauth2-sync":
                found.append(words[1:])
            simple = []
    return found


def _words(tokens: list[str]) -> list[str]:
    # Leading keywords and VAR=value assignments go; so does everything from the first
    # redirection. A completion request (_OAUTH2_SYNC_COMPLETE=...) is no command line.
    while tokens and (tokens[0] in SHELL_KEYWORDS or re.match(r"^[A-Za-z_]\w*=", tokens[0])):
        if tokens[0].startswith("_OAUTH2_SYNC_COMPLETE="):
            return []
        tokens = tokens[1:]
    for index, token in enumerate(tokens):
        if token and set(token) <= set("<>&"):
            cut = index - 1 if index and tokens[index - 1].isdigit() else index
            return tokens[:cut]
    return tokens


def parse_with_click(args: Sequence[str]) -> list[str]:
    """Parse ``oauth2-sync ARGS`` with the real command tree, invoking nothing; the path
    of command names. Raises click's errors for unknown commands, options and values."""
    path: list[str] = []
    try:
        ctx = cli.make_context("oauth2-sync", list(args))
    except click.exceptions.Exit as done:  # --version, --help
        assert done.exit_code == 0
        return path
    command: click.Command = cli
    rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
    while isinstance(command, click.Group) and rest:
        name, sub, rest = command.resolve_command(ctx, rest)
        assert name is not None and sub is not None
        path.append(name)
        ctx = sub.make_context(name, rest, parent=ctx)
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        command = sub
    assert not rest, f"unexpected arguments {rest}"
    return path


# --- the README tutorial -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Fence:
    lang: str
    line: int
    end: int
    lines: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class TutorialBlock:
    """A ```sh block and the output its last command must show (a ```text block)."""

    commands: tuple[ShellCommand, ...]
    output: tuple[str, ...] | None


def tutorial_text() -> tuple[str, int]:
    """The tutorial between its markers, and the README line it starts on."""
    text = README.read_text(encoding="utf-8")
    begin = re.search(r"^<!-- BEGIN tutorial.*-->$", text, re.M)
    end = re.search(r"^<!-- END tutorial -->$", text, re.M)
    assert begin and end and begin.end() < end.start(), "README: tutorial markers missing"
    return text[begin.end() : end.start()], text[: begin.end()].count("\n") + 1


def fences(text: str, first_line: int) -> list[Fence]:
    found: list[Fence] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = re.match(r"^```(\w*)\s*$", lines[i])
        if not opening:
            i += 1
            continue
        start = i
        i += 1
        while not lines[i].startswith("```"):
            i += 1
        found.append(Fence(opening.group(1), first_line + start, first_line + i,
                           tuple(lines[start + 1 : i])))
        i += 1
    return found


def tutorial_blocks() -> list[TutorialBlock]:
    text, first_line = tutorial_text()
    all_fences = fences(text, first_line)
    lines = text.splitlines()
    blocks: list[TutorialBlock] = []
    for index, fence in enumerate(all_fences):
        if fence.lang != "sh":
            continue
        first = next((line for line in fence.lines if line.strip()), "")
        run = not (first.lstrip().startswith("#") and NOT_RUN in first)
        commands = split_commands(fence.lines, fence.line + 1, run)
        output = None
        following = all_fences[index + 1] if index + 1 < len(all_fences) else None
        if following and following.lang == "text":
            between = lines[fence.end - first_line + 1 : following.line - first_line]
            if not any(line.strip() for line in between):
                output = following.lines
        blocks.append(TutorialBlock(tuple(commands), output))
    return blocks


def assert_shows(expected: Sequence[str], output: str, where: str) -> None:
    """Every expected line appears in ``output``, in order; ``...`` stands for any lines."""
    lines = [line.rstrip() for line in output.splitlines()]
    position = 0
    for want in expected:
        if want.strip() == "...":
            continue
        try:
            position = lines.index(want.rstrip(), position) + 1
        except ValueError:
            pytest.fail(
                f"{where}: the output lacks (in this order) the line\n{want}\n--- output:\n{output}"
            )


def test_the_tutorial_runs_end_to_end(
    tmp_path: Path, bin_dir: Path, start_registry_server: Callable[..., RegistryServer]
) -> None:
    server = start_registry_server()
    address = server.base_url.split("//", 1)[1].split("/", 1)[0]
    work, logs = tmp_path / "work", tmp_path / "logs"
    work.mkdir()
    logs.mkdir()
    blocks = tutorial_blocks()
    ran: list[tuple[ShellCommand, TutorialBlock]] = []
    script = [f"cd {shlex.quote(str(work))}"]
    for block in blocks:
        for command in block.commands:
            if command.head.startswith("git clone "):
                # This checkout stands in for the clone (installed already).
                assert not command.run
                script.append(f"ln -s {shlex.quote(str(ROOT))} oauth2-sync")
            elif command.run:
                n = len(ran)
                ran.append((command, block))
                text = command.text.replace(TUTORIAL_ADDRESS, address)
                script.append(f"{{\n{text}\n}} >{logs}/{n}.out 2>&1 </dev/null")
                script.append(f"echo $? >{logs}/{n}.rc")
    assert len(ran) >= 30
    # A session of its own: should a command not end, the whole group is stopped.
    process = subprocess.Popen(
        ["bash", "--noprofile", "--norc", "-c", "\n".join(script)], env=clean_env(bin_dir),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    try:
        shell_output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"the tutorial did not finish in {TIMEOUT} s")
    assert process.returncode == 0, shell_output
    for n, (command, block) in enumerate(ran):
        output = (logs / f"{n}.out").read_text()
        status = int((logs / f"{n}.rc").read_text())
        where = f"README.md:{command.line}: {command.head}"
        assert status == command.expect, f"{where}\nexit status {status}\n{output}"
        if block.output is not None and command is block.commands[-1]:
            expected = [line.replace(TUTORIAL_ADDRESS, address) for line in block.output]
            assert_shows(expected, output, where)
    config = work / "oauth2-sync-tutorial" / "my-clients"
    assert sorted(p.name for p in (config / ".secrets").iterdir()) == [
        "acme-reporting.json", "acme-web-portal.json",
    ]
    log = subprocess.run(
        ["git", "log", "--format=%s"], cwd=config, env=clean_env(bin_dir),
        capture_output=True, text=True, check=True,
    ).stdout
    assert log.splitlines() == [
        "CI: oauth2-sync plan, apply and drift",
        "Reporting service: one-hour access tokens",
        "Acme: reporting service and customer portal",
    ]
    assert (config / ".github" / "workflows" / "oauth2-sync-plan.yml").is_file()


def test_every_tutorial_command_line_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Relative paths (the seed of `registry serve`) as the tutorial has them.
    (tmp_path / "oauth2-sync").symlink_to(ROOT)
    monkeypatch.chdir(tmp_path)
    seen: set[str] = set()
    for block in tutorial_blocks():
        for command in block.commands:
            for args in invocations(command.text):
                seen.add(" ".join(parse_with_click(args)))
    assert {"validate", "plan", "apply", "drift", "schema", "registry serve"} <= seen


def test_the_tutorial_serves_and_configures_the_same_address() -> None:
    registry = cli.commands["registry"]
    assert isinstance(registry, click.Group)
    port = next(p for p in registry.commands["serve"].params if p.name == "port")
    text, _ = tutorial_text()
    assert f"127.0.0.1:{port.default}" == TUTORIAL_ADDRESS
    assert f"registry listening on http://{TUTORIAL_ADDRESS}/v1" in text
    assert f"url: http://{TUTORIAL_ADDRESS}/v1" in text
    skipped = [c.head for b in tutorial_blocks() for c in b.commands if not c.run]
    assert len(skipped) <= 10, skipped


# --- loopback stand-ins: Vault and GitLab --------------------------------------


Handler = Callable[[str, str, Mapping[str, str], bytes], tuple[int, dict[str, str], bytes]]


class _StandInHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        handle: Handler = self.server.handle  # type: ignore[attr-defined]
        status, headers, payload = handle(self.command, self.path, dict(self.headers), body)
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        try:
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # a client killed while it waited (a cancelled job)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def stand_in(handle: Handler) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 answering with ``handle``; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StandInHandler)
    server.handle = handle  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class Vault:
    """Vault's KV v2 write and read (``POST``/``GET /v1/secret/data/PATH``), nothing else.

    With ``hold_after`` set, writes beyond that many secrets hang (``held`` is set) until
    ``release``: a store that is slow just when a job is cancelled.
    """

    token = "vault-token-for-tests"

    def __init__(self) -> None:
        self.data: dict[str, dict[str, str]] = {}
        self.refuse = False
        self.hold_after: int | None = None
        self.held = threading.Event()
        self.release = threading.Event()

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if headers.get("X-Vault-Token") != self.token or self.refuse:
            return 403, {}, b'{"errors": ["permission denied"]}'
        match = re.fullmatch(r"/v1/secret/data/(.+)", path)
        if method == "GET" and match and match.group(1) in self.data:
            return 200, {}, json.dumps({"data": {"data": self.data[match.group(1)]}}).encode()
        if method != "POST" or not match:
            return 404, {}, b'{"errors": []}'
        if self.hold_after is not None and len(self.data) >= self.hold_after:
            self.held.set()
            self.release.wait(TIMEOUT)
            return 503, {}, b'{"errors": ["sealed"]}'
        self.data[match.group(1)] = json.loads(body)["data"]
        return 200, {}, b'{"data": {"version": 1}}'

    @property
    def secrets(self) -> set[str]:
        return {entry["client_secret"] for entry in self.data.values()}


class GitLabNotes:
    """The notes of merge request !7 of project 42, two to a page whatever is asked."""

    token = "gitlab-token-for-tests"
    base = "/api/v4/projects/42/merge_requests/7/notes"

    def __init__(self) -> None:
        self.notes: list[dict[str, Any]] = [
            {"id": 1, "body": "added 1 commit", "system": True},
            {"id": 2, "body": "Looks good to me", "system": False},
            {"id": 3, "body": "> " + PLAN_MARKER + " quoted by a person", "system": False},
        ]

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if headers.get("Private-Token") != self.token:
            return 401, {}, b'{"message": "401 Unauthorized"}'
        parts = urlsplit(path)
        if method == "GET" and parts.path == self.base:
            page = int(parse_qs(parts.query).get("page", ["1"])[0])
            chunk = self.notes[(page - 1) * 2 : page * 2]
            more = len(self.notes) > page * 2
            return 200, {"X-Next-Page": str(page + 1) if more else ""}, json.dumps(chunk).encode()
        if method == "POST" and parts.path == self.base:
            note = {"id": max(n["id"] for n in self.notes) + 1, "system": False,
                    "body": json.loads(body)["body"]}
            self.notes.append(note)
            return 201, {}, json.dumps(note).encode()
        match = re.fullmatch(re.escape(self.base) + r"/(\d+)", parts.path)
        if method == "PUT" and match:
            note = next(n for n in self.notes if n["id"] == int(match.group(1)))
            note["body"] = json.loads(body)["body"]
            return 200, {}, json.dumps(note).encode()
        return 404, {}, b'{"message": "404 Not found"}'

    def plan_notes(self) -> list[str]:
        return [n["body"] for n in self.notes if str(n["body"]).startswith(PLAN_MARKER)]


# --- GitHub Actions, run locally -------------------------------------------------

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
GITHUB_SCRIPT_HARNESS = r"""
// Runs an actions/github-script script against an in-memory stand-in of the GitHub
// REST calls the kit uses. argv: state.json script.js context.json
const fs = require('fs');
const [stateFile, scriptFile, contextFile] = process.argv.slice(2);
const state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
const context = JSON.parse(fs.readFileSync(contextFile, 'utf8'));
const bot = { login: 'github-actions[bot]', type: 'Bot' };
const notFound = () => Object.assign(new Error('Not Found'), { status: 404 });
const issueOf = (n) => {
  const i = state.issues.find((x) => x.number === n); if (!i) throw notFound(); return i;
};
const github = {
  paginate: async (method, params) => (await method(params)).data,
  rest: { issues: {
    listComments: async ({ issue_number }) =>
      ({ data: state.comments.filter((c) => c.issue_number === issue_number) }),
    createComment: async ({ issue_number, body }) => {
      const c = { id: state.next++, issue_number, body, user: bot };
      state.comments.push(c); return { data: c };
    },
    updateComment: async ({ comment_id, body }) => {
      const c = state.comments.find((x) => x.id === comment_id); if (!c) throw notFound();
      c.body = body; return { data: c };
    },
    listForRepo: async ({ state: wanted, labels }) => ({ data: state.issues.filter((i) =>
      i.state === wanted && i.labels.some((l) => l.name === labels)) }),
    create: async ({ title, body, labels }) => {
      const i = { number: state.next++, title, body, state: 'open',
        labels: labels.map((name) => ({ name })) };
      state.issues.push(i); return { data: i };
    },
    update: async ({ issue_number, ...changes }) => {
      const i = issueOf(issue_number); Object.assign(i, changes); return { data: i };
    },
    getLabel: async ({ name }) => {
      if (!state.labels.includes(name)) throw notFound(); return { data: { name } };
    },
    createLabel: async ({ name }) => { state.labels.push(name); return { data: { name } }; },
  },
  repos: {
    listPullRequestsAssociatedWithCommit: async ({ commit_sha }) =>
      ({ data: state.pulls.filter((p) => p.merge_commit_sha === commit_sha) }),
  } },
};
const core = { info: (m) => console.log(m), warning: (m) => console.error(m),
  setFailed: (m) => { console.error(m); process.exitCode = 1; },
  setOutput: (name, value) => fs.appendFileSync(process.env.GITHUB_OUTPUT, `${name}=${value}\n`) };
const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;
const source = fs.readFileSync(scriptFile, 'utf8');
const script = new AsyncFunction('github', 'context', 'core', 'require', source);
script(github, context, core, require)
  .then(() => fs.writeFileSync(stateFile, JSON.stringify(state)))
  .catch((error) => { console.error(error); process.exit(1); });
"""


@dataclasses.dataclass
class StepResult:
    name: str
    outcome: str
    outputs: dict[str, str]
    log: str


@dataclasses.dataclass
class JobResult:
    steps: list[StepResult]

    @property
    def ok(self) -> bool:
        return all(step.outcome != "failure" for step in self.steps)

    @property
    def log(self) -> str:
        return "\n".join(step.log for step in self.steps)

    def step(self, name: str) -> StepResult:
        return next(step for step in self.steps if step.name == name)


class GitHubRunner:
    """Runs the jobs of the shipped workflows in one workspace, as GitHub's runner would.

    ``uses:`` steps other than github-script are recorded, not run (checkout and
    setup-python are what the workspace and PATH already are); the install step is
    skipped (the checkout is installed)."""

    def __init__(self, workspace: Path, env: Mapping[str, str], state_dir: Path) -> None:
        self.workspace = workspace
        self.env = dict(env)
        self.state_dir = state_dir
        self.vars: dict[str, str] = {}
        self.secrets: dict[str, str] = {}
        self.api = state_dir / "github-api.json"
        self.api.write_text(json.dumps(
            {"comments": [], "issues": [], "labels": [], "pulls": [], "next": 100}
        ))
        self.harness = state_dir / "github-script.js"
        self.harness.write_text(GITHUB_SCRIPT_HARNESS)
        self.event: dict[str, Any] = {}
        self.sha = "0" * 40
        """The commit a workflow runs for (``context.sha``)."""
        self.inputs: dict[str, str] = {}
        self.used: list[dict[str, Any]] = []
        self.cancel: tuple[str, threading.Event] | None = None
        """(step name, event): cancel the run once the event is set during that step."""

    def api_state(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(self.api.read_text())
        return state

    def context(self, steps: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "vars": self.vars,
            "secrets": self.secrets,
            "steps": steps,
            "inputs": self.inputs,
            "github": {
                "server_url": "https://github.example",
                "repository": "example-org/oauth2-clients",
                "run_id": "4242",
                "event": self.event,
            },
        }

    def run(self, workflow: str, job_name: str) -> JobResult:
        document = yaml.safe_load((WORKFLOWS / workflow).read_text())
        assert document["defaults"]["run"]["shell"] == "bash"
        job = document["jobs"][job_name]
        steps: dict[str, Any] = {}
        results: list[StepResult] = []
        for index, step in enumerate(job["steps"]):
            name = step.get("name") or step.get("uses") or f"step {index}"
            context = self.context(steps)
            failed = any(r.outcome == "failure" for r in results)
            cancelled = any(r.outcome == "cancelled" for r in results)
            if not self.condition(step.get("if"), context, failed, cancelled):
                result = StepResult(name, "skipped", {}, "")
            elif name == INSTALL_STEP:
                assert PLACEHOLDER in step["run"] and "pip install" in step["run"]
                result = StepResult(name, "success", {}, "")
            else:
                env = {
                    **self.env,
                    **self.resolve(document.get("env", {}), context),
                    **self.resolve(job.get("env", {}), context),
                    **self.resolve(step.get("env", {}), context),
                    "CI": "true", "GITHUB_ACTIONS": "true",
                }
                result = self.run_step(name, step, env, context)
            results.append(result)
            if "id" in step:
                steps[step["id"]] = {"outcome": result.outcome, "conclusion": result.outcome,
                                     "outputs": result.outputs}
        return JobResult(results)

    def run_step(
        self, name: str, step: Mapping[str, Any], env: dict[str, str], context: Mapping[str, Any]
    ) -> StepResult:
        if "uses" in step:
            action = step["uses"].split("@")[0]
            self.used.append({"uses": step["uses"], "with": step.get("with", {})})
            if action != "actions/github-script":
                return StepResult(name, "success", {}, "")
            script = self.state_dir / "script.js"
            script.write_text(step["with"]["script"])
            github_context = self.state_dir / "context.json"
            github_context.write_text(json.dumps({
                "repo": {"owner": "example-org", "repo": "oauth2-clients"},
                "payload": self.event, "sha": self.sha,
            }))
            output = self.state_dir / "github-output"
            output.write_text("")
            done = subprocess.run(
                ["node", str(self.harness), str(self.api), str(script), str(github_context)],
                cwd=self.workspace, env={**env, "GITHUB_OUTPUT": str(output)},
                capture_output=True, text=True, timeout=TIMEOUT, check=False,
            )
            log = done.stdout + done.stderr
            outputs = dict(
                line.split("=", 1) for line in output.read_text().splitlines() if "=" in line
            )
            return StepResult(
                name, "success" if done.returncode == 0 else "failure", outputs, log
            )
        assert EXPRESSION.search(step["run"]) is None, f"{name}: expressions belong in env:"
        output = self.state_dir / "github-output"
        output.write_text("")
        env.update(GITHUB_OUTPUT=str(output),
                   GITHUB_STEP_SUMMARY=str(self.state_dir / "github-step-summary"))
        if self.cancel is not None and self.cancel[0] == name:
            return self.run_cancelled(name, step["run"], env, self.cancel[1])
        done = bash(step["run"], self.workspace, env)
        outputs = dict(
            line.split("=", 1) for line in output.read_text().splitlines() if "=" in line
        )
        return StepResult(name, "success" if done.returncode == 0 else "failure", outputs,
                          done.stdout)

    def run_cancelled(
        self, name: str, script: str, env: Mapping[str, str], when: threading.Event
    ) -> StepResult:
        """The step as GitHub cancels it: once ``when`` is set, SIGINT to the step's
        processes, SIGTERM after a grace period, then SIGKILL (the runner's sequence,
        with shorter pauses)."""
        process = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=self.workspace, env=dict(env), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )
        stdout = process.stdout
        assert stdout is not None
        log: list[str] = []
        reader = threading.Thread(target=lambda: log.append(stdout.read()))
        reader.start()
        assert when.wait(TIMEOUT), f"{name}: never reached the point to cancel at"
        for signum, grace in ((signal.SIGINT, 5.0), (signal.SIGTERM, 2.5), (signal.SIGKILL, 0)):
            if process.poll() is not None:
                break
            os.killpg(process.pid, signum)
            try:
                process.wait(grace or TIMEOUT)
            except subprocess.TimeoutExpired:
                continue
        reader.join(TIMEOUT)
        return StepResult(name, "cancelled", {}, "".join(log))

    def resolve(self, values: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, str]:
        return {k: EXPRESSION.sub(lambda m: str(self.value(m.group(1), context)), str(v))
                for k, v in values.items()}

    @staticmethod
    def value(expression: str, context: Mapping[str, Any]) -> Any:
        expression = expression.strip()
        literal = re.fullmatch(r"'([^']*)'", expression)
        if literal:
            return literal.group(1)
        assert re.fullmatch(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)+", expression), (
            f"an expression this test does not evaluate: {expression}"
        )
        value: Any = context
        for part in expression.split("."):
            value = value.get(part, "") if isinstance(value, Mapping) else ""
        return value

    def condition(
        self, text: str | None, context: Mapping[str, Any], failed: bool, cancelled: bool = False
    ) -> bool:
        text = (text or "success()").strip()
        inner = EXPRESSION.fullmatch(text)
        text = inner.group(1) if inner else text
        result = True
        for term in (t.strip() for t in text.split("&&")):
            if term == "always()":
                continue
            if term == "!cancelled()":
                result = result and not cancelled
            elif term == "success()":
                result = result and not failed and not cancelled
            elif term == "failure()":
                result = result and failed
            else:
                match = re.fullmatch(r"(.+?)\s*(==|!=)\s*(.+)", term)
                assert match, f"a condition this test does not evaluate: {term}"
                left, operator, right = match.groups()
                equal = str(self.value(left, context)) == str(self.value(right, context))
                result = result and equal == (operator == "==")
        if not re.search(r"always\(\)|cancelled\(\)|success\(\)|failure\(\)", text):
            result = result and not failed and not cancelled
        return result


def edit_local_client(db: Path, client_id: str, **changes: Any) -> None:
    """What someone with the admin form would do, on the embedded store."""
    registry = LocalRegistry(db)
    try:
        current = registry.get_client(client_id)
        assert current is not None
        registry.replace_client(dataclasses.replace(current.client, **changes), current.version)
    finally:
        registry.close()


def no_secret_in(secrets: set[str], *texts: str) -> None:
    assert secrets
    for secret in secrets:
        for text in texts:
            assert secret not in text


def test_github_workflows_comment_apply_and_track_drift(tmp_path: Path, bin_dir: Path) -> None:
    workspace = copy_examples(tmp_path / "repo")
    state = tmp_path / "state"
    state.mkdir()
    runner = GitHubRunner(workspace, clean_env(bin_dir), state)
    runner.vars = {"OAUTH2_SYNC_PLAN_CLIENT_ID": "oauth2-sync-plan",
                   "OAUTH2_SYNC_APPLY_CLIENT_ID": "oauth2-sync-ci"}
    runner.secrets = {"OAUTH2_SYNC_PLAN_CLIENT_SECRET": "plan-secret-for-local-tests",
                      "OAUTH2_SYNC_APPLY_CLIENT_SECRET": "ci-secret-for-local-tests"}

    def pull_request(sha: str) -> None:
        runner.event = {"pull_request": {"number": 7, "head": {
            "sha": sha, "repo": {"full_name": "example-org/oauth2-clients"}}}}

    # Two pushes to a pull request: one comment, updated in place.
    pull_request("1111111aaaa")
    first = runner.run("oauth2-sync-plan.yml", "plan")
    assert first.ok, first.log
    assert first.step("Plan").outputs == {"exit-code": "2", "has-plan": "true"}
    pull_request("2222222bbbb")
    second = runner.run("oauth2-sync-plan.yml", "plan")
    assert second.ok, second.log
    comments = runner.api_state()["comments"]
    assert len(comments) == 1
    body = comments[0]["body"]
    assert body.startswith(PLAN_MARKER + "\n### oauth2-sync plan\n")
    assert "**Plan: 12 to add, 0 to change, 0 to destroy.**" in body
    run_url = "https://github.example/example-org/oauth2-clients/actions/runs/4242"
    assert f"<sub>Commit 2222222, [workflow run]({run_url}).</sub>" in body
    assert (state / "github-step-summary").read_text().startswith("### oauth2-sync plan")

    # Merged: apply; new secrets reach Vault and leave the runner.
    vault = Vault()
    with stand_in(vault.handle) as vault_url:
        runner.vars |= {"OAUTH2_SYNC_SECRET_STORE": "vault", "VAULT_ADDR": vault_url}
        runner.secrets["VAULT_TOKEN"] = vault.token
        applied = runner.run("oauth2-sync-apply.yml", "apply")
    assert applied.ok, applied.log
    assert "Apply complete: 12 created, 0 updated, 0 deleted." in applied.log
    assert sorted(vault.data) == [f"oauth2-clients/{cid}" for cid in EXAMPLE_IDS]
    # The reference registry uses our client IDs: the registry's is the same.
    assert all(
        set(v) == {"client_id", "registry_client_id", "client_secret", "created_at"}
        and v["registry_client_id"] == v["client_id"]
        for v in vault.data.values()
    )
    assert not (workspace / ".secrets").exists()

    # Run by hand to replace lost secrets: rotated, and the new ones reach Vault.
    before = {k: v["client_secret"] for k, v in vault.data.items()}
    issued = vault.secrets
    runner.inputs = {"rotate": "acme-reporting  globex-etl"}
    with stand_in(vault.handle) as vault_url:
        runner.vars["VAULT_ADDR"] = vault_url
        rotated = runner.run("oauth2-sync-apply.yml", "apply")
    runner.inputs = {}
    assert rotated.ok, rotated.log
    assert "Rotated 2 secrets." in rotated.log
    changed = sorted(k for k, v in vault.data.items() if v["client_secret"] != before[k])
    assert changed == ["oauth2-clients/acme-reporting", "oauth2-clients/globex-etl"]
    issued |= vault.secrets

    # Nightly: no drift, no issue; then an out-of-band edit opens one, kept up to date,
    # and closed once apply has restored the registry.
    quiet = runner.run("oauth2-sync-drift.yml", "drift")
    assert quiet.ok and quiet.step("Drift").outputs == {"exit-code": "0"}, quiet.log
    assert runner.api_state()["issues"] == []
    assert (workspace / "drift-junit.xml").read_text().count("<failure") == 0
    db = workspace / ".oauth2-sync" / "registry.db"
    edit_local_client(db, "acme-web-portal", name="Renamed by hand")
    for _ in range(2):
        drifted = runner.run("oauth2-sync-drift.yml", "drift")
        assert drifted.ok and drifted.step("Drift").outputs == {"exit-code": "2"}, drifted.log
    issues = runner.api_state()["issues"]
    assert len(issues) == 1 and issues[0]["state"] == "open"
    assert issues[0]["labels"] == [{"name": DRIFT_LABEL}]
    assert issues[0]["title"] == "oauth2-sync: the registry has drifted from the repository"
    assert "Renamed by hand" in issues[0]["body"] and "acme-web-portal" in issues[0]["body"]
    assert runner.api_state()["labels"] == [DRIFT_LABEL]
    assert (workspace / "drift-junit.xml").read_text().count("<failure") == 1
    assert any(u["uses"].startswith("actions/upload-artifact@") and
               u["with"]["path"] == "drift-junit.xml" for u in runner.used)
    with stand_in(vault.handle) as vault_url:
        runner.vars["VAULT_ADDR"] = vault_url
        restored = runner.run("oauth2-sync-apply.yml", "apply")
    assert restored.ok and "acme-web-portal: updated (name)" in restored.log, restored.log
    assert "the store holds a secret for each of the 12 client(s)" in restored.log
    closed = runner.run("oauth2-sync-drift.yml", "drift")
    assert closed.ok, closed.log
    issue = runner.api_state()["issues"][0]
    assert (issue["state"], issue["state_reason"]) == ("closed", "completed")
    assert runner.api_state()["comments"][-1]["body"].startswith("No drift any more")

    # A pull request whose files do not validate: annotations, a failed job, and the
    # comment says so instead of showing an outdated plan.
    broken = workspace / "clients" / "payments" / "reporting.yaml"
    broken.write_text(broken.read_text().replace("scopes: [read]", "scopes: [raed]"))
    pull_request("3333333cccc")
    invalid = runner.run("oauth2-sync-plan.yml", "plan")
    assert not invalid.ok
    assert invalid.step("Validate").outcome == "failure"
    assert invalid.step("Plan").outcome == "skipped"
    assert (
        "::error file=clients/payments/reporting.yaml,line=8,col=14,title=oauth2-sync schema::"
        in invalid.log
    )
    comments = runner.api_state()["comments"]
    assert [c["body"].startswith(PLAN_MARKER) for c in comments].count(True) == 1
    assert "**No plan: the files do not validate.**" in comments[0]["body"]

    everything = [first.log, second.log, applied.log, rotated.log, quiet.log, drifted.log,
                  restored.log, closed.log, invalid.log, runner.api.read_text()]
    everything += [p.read_text() for p in workspace.glob("*.md")]
    no_secret_in(issued, *everything)


def test_the_apply_workflow_refuses_to_start_without_a_secret_store(
    tmp_path: Path, bin_dir: Path
) -> None:
    workspace = copy_examples(tmp_path / "repo")
    state = tmp_path / "state"
    state.mkdir()
    runner = GitHubRunner(workspace, clean_env(bin_dir), state)
    result = runner.run("oauth2-sync-apply.yml", "apply")
    assert result.step("Check the secret store").outcome == "failure"
    assert result.step("Apply").outcome == "skipped"
    assert result.step("Check that the store holds every client's secret").outcome == "skipped"
    assert (
        "store-secret: OAUTH2_SYNC_SECRET_STORE is not set (or is 'directory') on a CI runner"
        in result.log
    )
    assert not (workspace / ".oauth2-sync").exists()  # the registry was never opened


def test_a_cancelled_apply_job_loses_no_secret_unnamed(
    tmp_path: Path, bin_dir: Path, start_registry_server: Callable[..., RegistryServer]
) -> None:
    """Issue #12, 1: the apply job cancelled mid-apply (real signals to the real
    processes, as GitHub's runner sends them) while the store hangs. Every client it
    created has its secret in the store, or is named by the next run, on a fresh runner
    without the old workspace or journal; a rotation by hand then completes the store."""
    server = start_registry_server()
    vault = Vault()

    def fresh_runner(name: str, vault_url: str) -> GitHubRunner:
        workspace = copy_examples(tmp_path / name / "repo")
        settings = workspace / "oauth2-sync.yaml"
        settings.write_text(settings.read_text().replace(
            "url: local:.oauth2-sync/registry.db", f"url: {server.base_url}"
        ))
        (tmp_path / name / "state").mkdir()
        runner = GitHubRunner(workspace, clean_env(bin_dir), tmp_path / name / "state")
        runner.vars = {"OAUTH2_SYNC_APPLY_CLIENT_ID": server.ci[0],
                       "OAUTH2_SYNC_SECRET_STORE": "vault", "VAULT_ADDR": vault_url}
        runner.secrets = {"OAUTH2_SYNC_APPLY_CLIENT_SECRET": server.ci[1],
                          "VAULT_TOKEN": vault.token}
        return runner

    def in_registry() -> list[str]:
        store = RegistryStore(server.db)
        try:
            return sorted({c["clientId"] for c in store.list_clients()} & set(EXAMPLE_IDS))
        finally:
            store.close()

    with stand_in(vault.handle) as vault_url:
        vault.hold_after = 3
        first = fresh_runner("first", vault_url)
        first.cancel = ("Apply", vault.held)
        cancelled = first.run("oauth2-sync-apply.yml", "apply")
        vault.hold_after = None
        vault.release.set()
        assert cancelled.step("Apply").outcome == "cancelled", cancelled.log
        assert cancelled.step("Check that the store holds every client's secret").outcome == (
            "skipped"
        )
        assert not (first.workspace / ".secrets").exists()  # nothing waited on the runner
        created = in_registry()
        stored = sorted(k.removeprefix("oauth2-clients/") for k in vault.data)
        lost = sorted(set(created) - set(stored))
        assert lost, (created, stored)  # the cancellation caught secrets on their way
        assert len(stored) == 3

        # The next run, on a fresh runner: the rest is created, and the lost are named.
        second = fresh_runner("second", vault_url)
        after = second.run("oauth2-sync-apply.yml", "apply")
        assert after.step("Apply").outcome == "success", after.log
        audit = after.step("Check that the store holds every client's secret")
        assert audit.outcome == "failure"
        assert audit.log.splitlines() == [
            *(f"store-secret: {cid}: no secret in vault secret/oauth2-clients/{cid} (a run "
              "that stopped between creating it and storing its secret?)" for cid in lost),
            f"store-secret: {len(lost)} of 12 client(s) have no secret in the store. Unless "
            "their secrets are kept elsewhere, issue new ones: oauth2-sync rotate-secret "
            + " ".join(lost),
        ]
        assert in_registry() == sorted(EXAMPLE_IDS)

        # The remedy the message names: a run by hand with `rotate`.
        second.inputs = {"rotate": " ".join(lost)}
        rotated = second.run("oauth2-sync-apply.yml", "apply")
        assert rotated.ok, rotated.log
        assert "the store holds a secret for each of the 12 client(s)" in rotated.log
    assert sorted(vault.data) == [f"oauth2-clients/{cid}" for cid in EXAMPLE_IDS]
    no_secret_in(vault.secrets, cancelled.log, after.log, rotated.log)


# --- GitLab CI, run locally ----------------------------------------------------


@dataclasses.dataclass
class GitLabJob:
    status: int
    allowed_to_fail: bool
    log: str


def run_gitlab_job(
    workspace: Path, name: str, env: Mapping[str, str], cancel: threading.Event | None = None
) -> GitLabJob:
    """A job's before_script (the install, skipped), script and after_script, as GitLab's
    shell runner runs them: one bash session for the script, another for after_script.
    With ``cancel``: once it is set, the script's processes get SIGTERM, then SIGKILL, and
    after_script runs (what GitLab does to a cancelled or timed-out job)."""
    document = yaml.safe_load(GITLAB_CI.read_text())
    job = document[name]
    before = job.get("before_script", document["default"]["before_script"])
    assert all("pip install" in line and PLACEHOLDER in line for line in before)

    def expand(value: str) -> str:
        return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)

    job_env = {**env, **{k: expand(str(v)) for k, v in job.get("variables", {}).items()}}
    if cancel is None:
        done = bash("\n".join(job["script"]), workspace, job_env)
        status, log = done.returncode, done.stdout
    else:
        process = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", "\n".join(job["script"])],
            cwd=workspace, env=job_env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        assert cancel.wait(TIMEOUT), f"{name}: never reached the point to cancel at"
        os.killpg(process.pid, signal.SIGTERM)
        try:
            log = process.communicate(timeout=2.5)[0]
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            log = process.communicate(timeout=TIMEOUT)[0]
        status = process.returncode
    after = bash("\n".join(job.get("after_script", [])), workspace, job_env)
    allowed = status in job.get("allow_failure", {}).get("exit_codes", [])
    return GitLabJob(status, allowed, log + after.stdout)


def test_gitlab_jobs_note_apply_and_report_drift(
    tmp_path: Path, bin_dir: Path, start_registry_server: Callable[..., RegistryServer]
) -> None:
    server = start_registry_server()
    workspace = copy_examples(tmp_path / "repo")
    settings = workspace / "oauth2-sync.yaml"
    settings.write_text(settings.read_text().replace(
        "url: local:.oauth2-sync/registry.db", f"url: {server.base_url}"
    ))
    gitlab, vault = GitLabNotes(), Vault()
    with stand_in(gitlab.handle) as gitlab_url, stand_in(vault.handle) as vault_url:
        env = clean_env(bin_dir) | {
            "CI": "true", "GITLAB_CI": "true",
            "CI_API_V4_URL": f"{gitlab_url}/api/v4", "CI_PROJECT_ID": "42",
            "CI_MERGE_REQUEST_IID": "7", "CI_COMMIT_SHORT_SHA": "1111111",
            "CI_JOB_URL": "https://gitlab.example/example-org/oauth2-clients/-/jobs/99",
            # Project CI/CD variables: the seed's read-only and read-write credentials.
            "OAUTH2_SYNC_PLAN_CLIENT_ID": server.plan[0],
            "OAUTH2_SYNC_PLAN_CLIENT_SECRET": server.plan[1],
            "OAUTH2_SYNC_APPLY_CLIENT_ID": server.ci[0],
            "OAUTH2_SYNC_APPLY_CLIENT_SECRET": server.ci[1],
            "OAUTH2_SYNC_GITLAB_TOKEN": gitlab.token,
            "OAUTH2_SYNC_SECRET_STORE": "vault", "VAULT_ADDR": vault_url,
            "VAULT_TOKEN": vault.token,
        }
        first = run_gitlab_job(workspace, "oauth2-sync-plan", env)
        assert first.status == 0, first.log
        assert "gitlab-mr-note: created note 4 on merge request !7" in first.log
        second = run_gitlab_job(
            workspace, "oauth2-sync-plan", env | {"CI_COMMIT_SHORT_SHA": "2222222"}
        )
        assert second.status == 0, second.log
        assert "gitlab-mr-note: updated note 4 on merge request !7" in second.log
        notes = gitlab.plan_notes()
        assert len(notes) == 1 and len(gitlab.notes) == 4
        assert "**Plan: 12 to add, 0 to change, 0 to destroy.**" in notes[0]
        assert notes[0].endswith(f"<sub>Commit 2222222, [job]({env['CI_JOB_URL']}).</sub>\n")

        applied = run_gitlab_job(workspace, "oauth2-sync-apply", env)
        assert applied.status == 0, applied.log
        assert sorted(vault.data) == [f"oauth2-clients/{cid}" for cid in EXAMPLE_IDS]
        assert not (workspace / ".secrets").exists()
        issued = vault.secrets
        old = vault.data["oauth2-clients/initech-batch"]["client_secret"]
        rotated = run_gitlab_job(
            workspace, "oauth2-sync-apply", env | {"OAUTH2_SYNC_ROTATE": "initech-batch"}
        )
        assert rotated.status == 0, rotated.log
        assert vault.data["oauth2-clients/initech-batch"]["client_secret"] != old
        issued |= vault.secrets

        quiet = run_gitlab_job(workspace, "oauth2-sync-drift", env)
        assert quiet.status == 0, quiet.log
        session = requests.Session()
        session.headers.update(server.headers())
        kiosk = f"{server.base_url}/oauth2-clients/initech-kiosk"
        session.delete(kiosk, timeout=10).raise_for_status()
        drifted = run_gitlab_job(workspace, "oauth2-sync-drift", env)
        assert (drifted.status, drifted.allowed_to_fail) == (2, True), drifted.log
        assert (
            '  - client "initech-kiosk" missing from the registry (clients/platform/initech.yaml:'
            in drifted.log
        )
        junit = (workspace / "drift-junit.xml").read_text()
        assert junit.count("<failure") == 1 and 'type="missing"' in junit

        # A merge request that does not validate: the job fails, the note says so.
        broken = workspace / "clients" / "payments" / "reporting.yaml"
        broken.write_text(broken.read_text().replace("scopes: [read]", "scopes: [raed]"))
        invalid = run_gitlab_job(workspace, "oauth2-sync-plan", env)
        assert invalid.status == 1
        assert "**No plan: the files do not validate.**" in gitlab.plan_notes()[0]
    no_secret_in(issued, first.log, second.log, applied.log, rotated.log, quiet.log,
                 drifted.log, json.dumps(gitlab.notes))


def test_a_cancelled_gitlab_apply_job_loses_no_secret_unnamed(
    tmp_path: Path, bin_dir: Path, start_registry_server: Callable[..., RegistryServer]
) -> None:
    """Issue #12, 1, on GitLab: the job cancelled (SIGTERM, then SIGKILL, then
    after_script) while the store hangs; the next pipeline, in a fresh workspace, names
    every client whose secret the store lacks."""
    server = start_registry_server()
    vault = Vault()

    def fresh_workspace(name: str) -> Path:
        workspace = copy_examples(tmp_path / name)
        settings = workspace / "oauth2-sync.yaml"
        settings.write_text(settings.read_text().replace(
            "url: local:.oauth2-sync/registry.db", f"url: {server.base_url}"
        ))
        return workspace

    with stand_in(vault.handle) as vault_url:
        env = clean_env(bin_dir) | {
            "CI": "true", "GITLAB_CI": "true",
            "OAUTH2_SYNC_APPLY_CLIENT_ID": server.ci[0],
            "OAUTH2_SYNC_APPLY_CLIENT_SECRET": server.ci[1],
            "OAUTH2_SYNC_SECRET_STORE": "vault", "VAULT_ADDR": vault_url,
            "VAULT_TOKEN": vault.token,
        }
        vault.hold_after = 5
        first = fresh_workspace("first")
        cancelled = run_gitlab_job(first, "oauth2-sync-apply", env, cancel=vault.held)
        vault.hold_after = None
        vault.release.set()
        assert cancelled.status != 0
        assert not (first / ".secrets").exists()
        store = RegistryStore(server.db)
        created = {c["clientId"] for c in store.list_clients()} & set(EXAMPLE_IDS)
        store.close()
        stored = {k.removeprefix("oauth2-clients/") for k in vault.data}
        lost = sorted(created - stored)
        assert lost and len(stored) == 5

        after = run_gitlab_job(fresh_workspace("second"), "oauth2-sync-apply", env)
        assert after.status == 1, after.log
        assert "Apply complete: " in after.log
        named = [
            line for line in after.log.splitlines() if line.startswith("store-secret: ")
        ]
        assert named == [
            *(f"store-secret: {cid}: no secret in vault secret/oauth2-clients/{cid} (a run "
              "that stopped between creating it and storing its secret?)" for cid in lost),
            f"store-secret: {len(lost)} of 12 client(s) have no secret in the store. Unless "
            "their secrets are kept elsewhere, issue new ones: oauth2-sync rotate-secret "
            + " ".join(lost),
        ]
    no_secret_in(vault.secrets, cancelled.log, after.log)


def test_plan_jobs_post_a_plan_that_leaves_out_what_the_registry_cannot_hold(
    tmp_path: Path, bin_dir: Path
) -> None:
    """On a standard OAuth server 7 example clients cannot be held: the plan of the
    other 5 still reaches the pull request, with the 7 listed, and the check fails."""
    workspace = copy_examples(tmp_path / "repo")
    settings = workspace / "oauth2-sync.yaml"
    left_out = "7 clients are left out of this plan: the registry cannot hold them."
    with running_peer() as peer:
        settings.write_text(settings.read_text().replace(
            "url: local:.oauth2-sync/registry.db", f"url: {peer.registry_url}"
        ))
        env = clean_env(bin_dir) | {"OAUTH2_SYNC_INITIAL_ACCESS_TOKEN": INITIAL_ACCESS_TOKEN}
        state = tmp_path / "state"
        state.mkdir()
        runner = GitHubRunner(workspace, env, state)
        runner.event = {"pull_request": {"number": 7, "head": {
            "sha": "4444444dddd", "repo": {"full_name": "example-org/oauth2-clients"}}}}
        github = runner.run("oauth2-sync-plan.yml", "plan")
        assert not github.ok
        assert github.step("Plan").outputs == {"exit-code": "1", "has-plan": "true"}
        (comment,) = runner.api_state()["comments"]
        assert "**Plan: 5 to add, 0 to change, 0 to destroy.**" in comment["body"]
        assert f"<p><strong>Error:</strong> {left_out}</p>" in comment["body"]

        gitlab = GitLabNotes()
        with stand_in(gitlab.handle) as gitlab_url:
            job = run_gitlab_job(workspace, "oauth2-sync-plan", env | {
                "CI": "true", "GITLAB_CI": "true", "CI_API_V4_URL": f"{gitlab_url}/api/v4",
                "CI_PROJECT_ID": "42", "CI_MERGE_REQUEST_IID": "7",
                "CI_COMMIT_SHORT_SHA": "4444444",
                "CI_JOB_URL": "https://gitlab.example/example-org/oauth2-clients/-/jobs/99",
                "OAUTH2_SYNC_GITLAB_TOKEN": gitlab.token,
            })
        assert job.status == 1, job.log
        (note,) = gitlab.plan_notes()
        assert "**Plan: 5 to add, 0 to change, 0 to destroy.**" in note
        assert left_out in note


# --- an unsafe plan: flagged on the pull request, applied only once approved -------

APPROVAL_LABEL = "oauth2-sync:allow-unsafe"
CAUTION = (
    "### oauth2-sync plan\n\n> [!CAUTION]\n> **Apply will refuse this plan**: it exceeds the "
    "safety limits of the settings.\n> - creates+updates: 12 exceeds 5 (safety.max_changes)\n>\n"
)
REFUSED = (
    "Error: the plan exceeds the safety limits: creates+updates: 12 exceeds 5 "
    "(safety.max_changes). Raise the limit in the settings, or pass --allow-unsafe for this run"
)


def unsafe_examples(target: Path) -> Path:
    """The example repository with ``safety.max_changes: 5``: its 12 creates are unsafe."""
    workspace = copy_examples(target)
    settings = workspace / "oauth2-sync.yaml"
    text = settings.read_text()
    assert "  max_changes: 50\n" in text
    settings.write_text(text.replace("  max_changes: 50\n", "  max_changes: 5\n"))
    return workspace


def test_github_an_unsafe_plan_is_flagged_and_applied_only_with_the_label(
    tmp_path: Path, bin_dir: Path
) -> None:
    workspace = unsafe_examples(tmp_path / "repo")
    state = tmp_path / "state"
    state.mkdir()
    runner = GitHubRunner(workspace, clean_env(bin_dir), state)
    runner.event = {"pull_request": {"number": 9, "head": {
        "sha": "5555555eeee", "repo": {"full_name": "example-org/oauth2-clients"}}}}
    planned = runner.run("oauth2-sync-plan.yml", "plan")
    assert planned.ok, planned.log  # a plan: the check passes, the comment warns
    (comment,) = runner.api_state()["comments"]
    assert comment["body"].startswith(f"{PLAN_MARKER}\n{CAUTION}")

    # Merged without the label: the apply job refuses before any write.
    runner.sha = "5" * 40
    api = runner.api_state()
    api["pulls"] = [{"number": 9, "merged_at": "2026-11-27T12:00:00Z",
                     "merge_commit_sha": runner.sha, "labels": [{"name": "oauth2-sync"}]}]
    runner.api.write_text(json.dumps(api))
    vault = Vault()
    runner.secrets["VAULT_TOKEN"] = vault.token
    with stand_in(vault.handle) as vault_url:
        runner.vars |= {"OAUTH2_SYNC_SECRET_STORE": "vault", "VAULT_ADDR": vault_url}
        refused = runner.run("oauth2-sync-apply.yml", "apply")
        assert refused.step("Approval of an unsafe plan").outputs == {"allow-unsafe": "false"}
        assert refused.step("Apply").outcome == "failure"
        assert REFUSED in refused.step("Apply").log.splitlines()
        assert vault.data == {}

        # A reviewer adds the label: the next run applies.
        api = runner.api_state()
        api["pulls"][0]["labels"].append({"name": APPROVAL_LABEL})
        runner.api.write_text(json.dumps(api))
        approved = runner.run("oauth2-sync-apply.yml", "apply")
    assert approved.ok, approved.log
    step = approved.step("Approval of an unsafe plan")
    assert (step.outputs, step.log) == (
        {"allow-unsafe": "true"},
        f"#9 is labelled {APPROVAL_LABEL}: applying with --allow-unsafe\n",
    )
    assert "Apply complete: 12 created, 0 updated, 0 deleted." in approved.log
    assert sorted(vault.data) == [f"oauth2-clients/{cid}" for cid in EXAMPLE_IDS]


class GitLabMergeRequests:
    """The merge requests of commit ``sha`` in project 42 (and nothing else)."""

    token = GitLabNotes.token

    def __init__(self, sha: str) -> None:
        self.sha = sha
        self.labels: list[str] = []

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if headers.get("Private-Token") != self.token:
            return 401, {}, b'{"message": "401 Unauthorized"}'
        wanted = f"/api/v4/projects/42/repository/commits/{self.sha}/merge_requests"
        if method == "GET" and path == wanted:
            merged = {"iid": 9, "state": "merged", "labels": self.labels}
            return 200, {}, json.dumps([merged]).encode()
        return 404, {}, b'{"message": "404 Not found"}'


def test_gitlab_an_unsafe_plan_is_flagged_and_applied_only_with_the_label(
    tmp_path: Path, bin_dir: Path
) -> None:
    workspace = unsafe_examples(tmp_path / "repo")
    notes, requests_ = GitLabNotes(), GitLabMergeRequests("6" * 40)
    vault = Vault()
    with (
        stand_in(notes.handle) as notes_url,
        stand_in(requests_.handle) as requests_url,
        stand_in(vault.handle) as vault_url,
    ):
        env = clean_env(bin_dir) | {
            "CI": "true", "GITLAB_CI": "true", "CI_API_V4_URL": f"{notes_url}/api/v4",
            "CI_PROJECT_ID": "42", "CI_MERGE_REQUEST_IID": "7", "CI_COMMIT_SHORT_SHA": "6666666",
            "CI_JOB_URL": "https://gitlab.example/example-org/oauth2-clients/-/jobs/99",
            "OAUTH2_SYNC_GITLAB_TOKEN": notes.token,
        }
        planned = run_gitlab_job(workspace, "oauth2-sync-plan", env)
        assert planned.status == 0, planned.log
        (note,) = notes.plan_notes()
        assert note.startswith(f"{PLAN_MARKER}\n{CAUTION}")

        env |= {
            "CI_API_V4_URL": f"{requests_url}/api/v4", "CI_COMMIT_SHA": requests_.sha,
            "OAUTH2_SYNC_SECRET_STORE": "vault", "VAULT_ADDR": vault_url,
            "VAULT_TOKEN": vault.token,
        }
        refused = run_gitlab_job(workspace, "oauth2-sync-apply", env)
        assert refused.status == 1, refused.log
        assert (
            f"gitlab-unsafe-approved: no merged merge request of this commit is labelled "
            f"{APPROVAL_LABEL}"
        ) in refused.log.splitlines()
        assert REFUSED in refused.log.splitlines()
        assert vault.data == {}

        requests_.labels.append(APPROVAL_LABEL)
        approved = run_gitlab_job(workspace, "oauth2-sync-apply", env)
    assert approved.status == 0, approved.log
    assert f"gitlab-unsafe-approved: !9 is labelled {APPROVAL_LABEL}: approved" in approved.log
    assert "Apply complete: 12 created, 0 updated, 0 deleted." in approved.log
    assert sorted(vault.data) == [f"oauth2-clients/{cid}" for cid in EXAMPLE_IDS]


def test_the_apply_step_stops_cleanly_when_the_runner_cancels_it(
    tmp_path: Path, bin_dir: Path, start_registry_server: Callable[..., RegistryServer]
) -> None:
    """GitHub cancels a step by sending SIGINT to its entry process, bash: the step
    ``exec``s apply, so apply gets it, starts no new write and exits 130."""
    server = start_registry_server(latency_ms=300)
    workspace = copy_examples(tmp_path / "repo")
    settings = workspace / "oauth2-sync.yaml"
    settings.write_text(settings.read_text().replace(
        "url: local:.oauth2-sync/registry.db", f"url: {server.base_url}"
    ))
    document = yaml.safe_load((WORKFLOWS / "oauth2-sync-apply.yml").read_text())
    (step,) = [s for s in document["jobs"]["apply"]["steps"] if s.get("name") == "Apply"]
    env = clean_env(bin_dir) | server.env() | {"ALLOW_UNSAFE": "false", "CI": "true"}
    process = subprocess.Popen(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=workspace, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:  # the plan, then the first client done
        if ": created (secret delivered to " in line:
            break
    process.send_signal(signal.SIGINT)
    rest, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 130, rest + stderr
    assert re.fullmatch(
        r"Interrupt received, stopping: no new writes; waiting for \d in flight\n", stderr
    ), stderr
    lines = rest.splitlines()
    assert re.fullmatch(r"\d+ not attempted: .+", lines[-2]), lines
    assert lines[-1].startswith("Apply interrupted: ")


# --- the CI files, statically -------------------------------------------------


def ci_scripts() -> dict[str, str]:
    """Every shell text of the CI files, by where it is."""
    scripts: dict[str, str] = {}
    for path in sorted(WORKFLOWS.glob("*.yml")):
        document = yaml.safe_load(path.read_text())
        for job_name, job in document["jobs"].items():
            for index, step in enumerate(job["steps"]):
                if "run" in step:
                    scripts[f"{path.name}:{job_name}:{step.get('name', index)}"] = step["run"]
    document = yaml.safe_load(GITLAB_CI.read_text())
    for name, job in document.items():
        if isinstance(job, dict) and "script" in job:
            for key in ("before_script", "script", "after_script"):
                scripts[f".gitlab-ci.yml:{name}:{key}"] = "\n".join(job.get(key, []))
    return scripts


def test_ci_files_call_only_commands_and_options_that_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(copy_examples(tmp_path / "repo"))
    used: dict[str, list[str]] = {}
    for where, script in ci_scripts().items():
        for args in invocations(script):
            parse_with_click(args)
            used.setdefault(where.split(":")[0], []).append(" ".join(args))
    assert used == {
        "oauth2-sync-apply.yml": [
            "validate --format github", "apply --auto-approve --allow-unsafe",
            "apply --auto-approve", "rotate-secret -- ${client_ids[@]}",
            "export --list-created",
        ],
        "oauth2-sync-drift.yml": ["drift --format markdown", "drift --format junit"],
        "oauth2-sync-plan.yml": ["validate --format github", "plan --format markdown"],
        ".gitlab-ci.yml": [
            "validate", "plan --format markdown", "validate",
            "apply --auto-approve --allow-unsafe", "apply --auto-approve",
            "rotate-secret -- $OAUTH2_SYNC_ROTATE",
            "export --list-created", "drift --format junit", "drift",
        ],
    }


def test_ci_files_are_wired_as_documented() -> None:
    plan, apply_, drift = (
        yaml.safe_load((WORKFLOWS / f"oauth2-sync-{n}.yml").read_text())
        for n in ("plan", "apply", "drift")
    )
    # PyYAML reads the key `on` as YAML 1.1's boolean true, as any YAML 1.1 loader would.
    assert plan[True] == {"pull_request": None}
    assert apply_[True]["push"] == {"branches": ["main"]}
    assert apply_[True]["workflow_dispatch"]["inputs"]["rotate"]["default"] == ""
    assert set(drift[True]) == {"schedule", "workflow_dispatch"}
    assert plan["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert apply_["permissions"] == {"contents": "read", "pull-requests": "read"}
    assert drift["permissions"] == {"contents": "read", "issues": "write"}
    assert apply_["concurrency"] == {"group": "oauth2-sync-apply", "cancel-in-progress": False}
    assert apply_["jobs"]["apply"]["environment"] == "oauth2-sync-apply"
    read_only = {
        "OAUTH2_SYNC_CLIENT_ID": "${{ vars.OAUTH2_SYNC_PLAN_CLIENT_ID }}",
        "OAUTH2_SYNC_CLIENT_SECRET": "${{ secrets.OAUTH2_SYNC_PLAN_CLIENT_SECRET }}",
    }
    assert plan["jobs"]["plan"]["env"] == read_only
    assert drift["jobs"]["drift"]["env"] == read_only
    assert apply_["jobs"]["apply"]["env"]["OAUTH2_SYNC_CLIENT_SECRET"] == (
        "${{ secrets.OAUTH2_SYNC_APPLY_CLIENT_SECRET }}"
    )
    for document in (plan, apply_, drift):
        for job in document["jobs"].values():
            for step in job["steps"]:
                if "uses" in step:
                    assert re.fullmatch(r"actions/[\w-]+@v\d+", step["uses"]), step["uses"]
                if "run" in step:
                    assert "${{" not in step["run"]  # expressions go through env:
                if "secrets." in json.dumps(step.get("env", {})):
                    pytest.fail(f"a step-level secret: {step}")
    gitlab = yaml.safe_load(GITLAB_CI.read_text())
    assert gitlab["oauth2-sync-apply"]["resource_group"] == "oauth2-sync-apply"
    assert gitlab["oauth2-sync-plan"]["rules"] == [
        {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}
    ]
    assert gitlab["oauth2-sync-drift"]["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    assert gitlab["oauth2-sync-drift"]["artifacts"]["reports"] == {"junit": "drift-junit.xml"}
    assert gitlab["oauth2-sync-plan"]["variables"]["OAUTH2_SYNC_CLIENT_SECRET"] == (
        "$OAUTH2_SYNC_PLAN_CLIENT_SECRET"
    )


def test_the_github_scripts_are_valid_javascript(tmp_path: Path) -> None:
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in job["steps"]:
                if str(step.get("uses", "")).startswith("actions/github-script@"):
                    source = tmp_path / "script.js"
                    source.write_text(
                        "async function run(github, context, core, require) {\n"
                        + step["with"]["script"] + "\n}\n"
                    )
                    done = subprocess.run(["node", "--check", str(source)], capture_output=True,
                                          text=True, timeout=TIMEOUT, check=False)
                    assert done.returncode == 0, f"{path.name}: {done.stderr}"


def test_codeowners_names_an_owner_for_every_team_folder() -> None:
    settings = load_settings(EXAMPLES / "oauth2-sync.yaml")
    rules = [
        line.split()
        for line in (EXAMPLES / "CODEOWNERS").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    patterns = {rule[0]: rule[1:] for rule in rules}
    assert patterns["*"] == ["@example-org/oauth2-admins"]
    for team in settings.teams:
        for path in team.paths:
            folder = "/" + path.split("*", 1)[0]
            assert patterns.get(folder) == [f"@example-org/{team.name}"], (team.name, folder)
    assert len(patterns) == 1 + sum(len(t.paths) for t in settings.teams)


# --- pre-commit hooks --------------------------------------------------------------


def test_pre_commit_hooks_run_as_pre_commit_runs_them(tmp_path: Path, bin_dir: Path) -> None:
    offered = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    hooks = {hook["id"]: hook for hook in offered}
    assert set(hooks) == {"oauth2-sync-validate", "oauth2-sync-fmt"}
    configured = yaml.safe_load((EXAMPLES / ".pre-commit-config.yaml").read_text())
    assert [h["id"] for r in configured["repos"] for h in r["hooks"]] == [
        "oauth2-sync-fmt", "oauth2-sync-validate",
    ]
    repo = copy_examples(tmp_path / "repo")
    # Every YAML file a commit may touch: client files, settings, CI files, the seed.
    staged = sorted(
        str(p.relative_to(repo)) for p in repo.rglob("*")
        if p.is_file() and re.search(hooks["oauth2-sync-fmt"]["files"], p.name)
    )
    assert ".gitlab-ci.yml" in staged and ".github/workflows/oauth2-sync-plan.yml" in staged
    unsorted = repo / "clients" / "payments" / "reporting.yaml"
    text = unsorted.read_text()
    unsorted.write_text(text.replace("scopes: [read, write]", "scopes: [write, read]"))
    for hook_id, hook in hooks.items():
        assert hook["language"] == "python"
        argv = shlex.split(hook["entry"])
        assert argv[0] == "oauth2-sync"
        parse_with_click(argv[1:])
        files = staged if hook.get("pass_filenames", True) else []
        done = subprocess.run([*argv, *files], cwd=repo, env=clean_env(bin_dir),
                              capture_output=True, text=True, timeout=TIMEOUT, check=False)
        assert done.returncode == 0, (hook_id, done.stdout, done.stderr)
    assert "scopes: [read, write]" in unsorted.read_text()  # fmt fixed it


# --- ci/store-secret ------------------------------------------------------------


def store_secret(
    args: Sequence[str], env: Mapping[str, str], stdin: str = "", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(STORE_SECRET), *args], input=stdin, env=dict(env), cwd=cwd,
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )


def test_store_secret_is_the_command_sink_of_the_settings(tmp_path: Path, bin_dir: Path) -> None:
    repo = copy_examples(tmp_path / "repo")
    assert load_settings(repo / "oauth2-sync.yaml").secrets.command == (
        str(repo / "ci" / "store-secret"),
    )
    store = tmp_path / "store"
    env = clean_env(bin_dir) | {"OAUTH2_SYNC_SECRET_DIR": str(store)}
    done = subprocess.run(["oauth2-sync", "apply", "--auto-approve"], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "acme-reporting: created (secret delivered to command ci/store-secret)" in done.stdout
    assert sorted(p.stem for p in store.iterdir()) == list(EXAMPLE_IDS)
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    for path in store.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        stored = json.loads(path.read_text())
        assert (stored["client_id"], stored["registry_client_id"]) == (path.stem, path.stem)
    assert not (repo / ".secrets").exists()


def test_store_secret_forwards_a_folder_and_keeps_what_it_could_not_store(
    tmp_path: Path, bin_dir: Path
) -> None:
    folder = tmp_path / ".secrets"
    folder.mkdir()
    for client_id in ("acme-a", "acme-b"):
        (folder / f"{client_id}.json").write_text(
            json.dumps({"client_id": client_id, "client_secret": f"secret-of-{client_id}"})
        )
    (folder / "acme-c.json").write_text(json.dumps({"client_id": "acme-x", "client_secret": "s"}))
    store = tmp_path / "store"
    env = clean_env(bin_dir) | {"OAUTH2_SYNC_SECRET_DIR": str(store)}
    done = store_secret(["--from", str(folder)], env)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"stored the secret of acme-a in {store}/acme-a.json",
        f"stored the secret of acme-b in {store}/acme-b.json",
    ]
    assert done.stderr.splitlines() == [
        f"store-secret: acme-c: {folder}/acme-c.json: holds the secret of acme-x, not of acme-c; "
        f"{folder}/acme-c.json is kept",
        "store-secret: 1 secret(s) not stored. If they are lost, issue new ones: "
        "oauth2-sync rotate-secret acme-c",
    ]
    assert sorted(p.name for p in folder.iterdir()) == ["acme-c.json"]
    # Files without registry_client_id (an older oauth2-sync): the registry used our ID.
    assert json.loads((store / "acme-b.json").read_text()) == {
        "client_id": "acme-b", "registry_client_id": "acme-b", "client_secret": "secret-of-acme-b",
    }


def test_store_secret_audit_names_the_clients_whose_secret_the_store_lacks(
    tmp_path: Path, bin_dir: Path
) -> None:
    store = tmp_path / "store"
    env = clean_env(bin_dir) | {"OAUTH2_SYNC_SECRET_DIR": str(store)}
    sent = {"client_id": "acme-a", "client_secret": "secret-of-acme-a"}
    assert store_secret([], env | {"CI": "true"}, json.dumps(sent)).returncode == 0
    done = store_secret(["--audit"], env, "acme-a\n\nacme-c\nacme-b\n")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.splitlines() == [
        f"store-secret: acme-b: no secret in {store}/acme-b.json (a run that stopped between "
        "creating it and storing its secret?)",
        f"store-secret: acme-c: no secret in {store}/acme-c.json (a run that stopped between "
        "creating it and storing its secret?)",
        "store-secret: 2 of 3 client(s) have no secret in the store. Unless their secrets "
        "are kept elsewhere, issue new ones: oauth2-sync rotate-secret acme-b acme-c",
    ]
    done = store_secret(["--audit"], env, "acme-a\n")
    assert (done.returncode, done.stdout, done.stderr) == (
        0, "the store holds a secret for each of the 1 client(s)\n", ""
    )
    done = store_secret(["--audit"], env, "../etc/passwd\n")
    assert (done.returncode, done.stderr) == (
        1, "store-secret: --audit: not a client ID: '../etc/passwd'\n"
    )


def test_store_secret_keeps_the_client_id_the_registry_issued(
    tmp_path: Path, bin_dir: Path
) -> None:
    store = tmp_path / "store"
    env = clean_env(bin_dir) | {"OAUTH2_SYNC_SECRET_DIR": str(store)}
    sent = {"client_id": "acme-a", "registry_client_id": "Xq3-server-chosen", "client_secret": "s"}
    done = store_secret([], env, json.dumps(sent))
    assert (done.returncode, done.stdout) == (0, f"stored the secret of acme-a in {store}/acme-a.json\n")
    assert json.loads((store / "acme-a.json").read_text()) == sent
    done = store_secret([], env, json.dumps(sent | {"registry_client_id": ""}))
    assert (done.returncode, done.stderr) == (
        1, "store-secret: stdin: registry_client_id of acme-a is empty or not a string\n"
    )


def test_store_secret_reports_vault_refusals_without_the_secret(bin_dir: Path) -> None:
    vault = Vault()
    vault.refuse = True
    payload = json.dumps({"client_id": "acme-a", "client_secret": "very-secret-value"})
    with stand_in(vault.handle) as url:
        env = clean_env(bin_dir) | {"OAUTH2_SYNC_SECRET_STORE": "vault", "VAULT_ADDR": url,
                                    "VAULT_TOKEN": vault.token}
        done = store_secret([], env, payload)
    assert done.returncode == 1
    assert done.stderr == (
        "store-secret: vault secret/oauth2-clients/acme-a: HTTP 403: permission denied\n"
    )
    assert "very-secret-value" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CI": "true"}, "store-secret: OAUTH2_SYNC_SECRET_STORE is not set (or is 'directory') "
         "on a CI runner: the secrets would be lost with the job's workspace. Set "
         "OAUTH2_SYNC_SECRET_STORE=vault, or OAUTH2_SYNC_SECRET_DIR to a folder that outlives "
         "the job"),
        ({"OAUTH2_SYNC_SECRET_STORE": "vault"},
         "store-secret: OAUTH2_SYNC_SECRET_STORE=vault needs VAULT_ADDR and VAULT_TOKEN"),
        ({"OAUTH2_SYNC_SECRET_STORE": "vault", "VAULT_ADDR": "http://vault.example:8200",
          "VAULT_TOKEN": "t"},
         "store-secret: refusing plain http to vault.example: VAULT_ADDR must be https "
         "(http only for loopback addresses)"),
        ({"OAUTH2_SYNC_SECRET_STORE": "s3"},
         "store-secret: OAUTH2_SYNC_SECRET_STORE must be 'directory' or 'vault', not 's3'"),
    ],
)
def test_store_secret_check_refuses_a_store_that_would_lose_secrets(
    bin_dir: Path, env: dict[str, str], message: str
) -> None:
    done = store_secret(["--check"], clean_env(bin_dir) | env)
    assert (done.returncode, done.stderr) == (1, message + "\n")


def test_gitlab_mr_note_refuses_to_send_its_token_in_clear(bin_dir: Path, tmp_path: Path) -> None:
    body = tmp_path / "plan.md"
    body.write_text("plan")
    env = clean_env(bin_dir) | {
        "CI_API_V4_URL": "http://gitlab.example/api/v4", "CI_PROJECT_ID": "42",
        "CI_MERGE_REQUEST_IID": "7", "OAUTH2_SYNC_GITLAB_TOKEN": "t",
    }
    done = subprocess.run([sys.executable, str(EXAMPLES / "ci" / "gitlab-mr-note"), str(body)],
                          env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert (done.returncode, done.stderr) == (
        1,
        "gitlab-mr-note: refusing plain http to gitlab.example: the token would travel in clear\n",
    )


def test_gitlab_unsafe_approved_refuses_to_send_its_token_in_clear(bin_dir: Path) -> None:
    env = clean_env(bin_dir) | {
        "CI_API_V4_URL": "http://gitlab.example/api/v4", "CI_PROJECT_ID": "42",
        "CI_COMMIT_SHA": "6" * 40, "OAUTH2_SYNC_GITLAB_TOKEN": "t",
    }
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "ci" / "gitlab-unsafe-approved")], env=env,
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        1,
        "gitlab-unsafe-approved: refusing plain http to gitlab.example: the token would "
        "travel in clear: not approved\n",
        "",
    )


# --- shell completion -------------------------------------------------------------


@pytest.mark.parametrize(
    ("shell", "needle"),
    [
        ("bash", "complete -o nosort -F _oauth2_sync_completion oauth2-sync"),
        ("zsh", "compdef _oauth2_sync_completion oauth2-sync"),
        ("fish", "complete --no-files --command oauth2-sync"),
    ],
)
def test_completion_scripts_are_generated(bin_dir: Path, shell: str, needle: str) -> None:
    # click derives the variable from the program name: oauth2-sync -> _OAUTH2_SYNC_COMPLETE.
    env = clean_env(bin_dir) | {"_OAUTH2_SYNC_COMPLETE": f"{shell}_source"}
    done = subprocess.run(["oauth2-sync"], env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr
    assert needle in done.stdout
    assert "_OAUTH2_SYNC_COMPLETE" in done.stdout


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("oauth2-sync pl", ["plan"]),
        ("oauth2-sync drift --format ", ["text", "json", "markdown", "junit"]),
        ("oauth2-sync schema ", ["clients", "settings"]),
        ("oauth2-sync registry ", ["serve"]),
        ("oauth2-sync apply --auto", ["--auto-approve"]),
    ],
)
def test_bash_completes_commands_options_and_values(
    bin_dir: Path, words: str, expected: list[str]
) -> None:
    # The generated script, sourced into bash, completes through the real program.
    parts = [*words.split(), *([""] if words.endswith(" ") else [])]
    script = (
        'eval "$(_OAUTH2_SYNC_COMPLETE=bash_source oauth2-sync)"\n'
        f"COMP_WORDS=({' '.join(shlex.quote(p) for p in parts)})\n"
        f"COMP_CWORD={len(parts) - 1}\n"
        "_oauth2_sync_completion oauth2-sync\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(["bash", "--noprofile", "--norc", "-c", script], env=clean_env(bin_dir),
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == expected


@pytest.mark.parametrize(("shell", "cword"), [("zsh", "3"), ("fish", "")])
def test_zsh_and_fish_completion_answers(bin_dir: Path, shell: str, cword: str) -> None:
    # What the generated zsh and fish functions ask the program (fish passes the
    # current token as COMP_CWORD); neither shell is needed to check the answer.
    env = clean_env(bin_dir) | {
        "_OAUTH2_SYNC_COMPLETE": f"{shell}_complete",
        "COMP_WORDS": "oauth2-sync drift --format ", "COMP_CWORD": cword,
    }
    done = subprocess.run(["oauth2-sync"], env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr
    # zsh gets "plain", value, "_" lines; fish "value" (click 8.4) or "plain,value" (8.5).
    lines = [line.removeprefix("plain,") for line in done.stdout.splitlines()]
    values = [line for line in lines if line not in ("plain", "_")]
    assert values == ["text", "json", "markdown", "junit"]
