"""GitHub Actions, run locally: the jobs of the shipped workflows step by step as
GitHub's runner runs them, ``actions/github-script`` steps in node against an
in-memory stand-in of the GitHub REST calls they make, and the oauth2-sync action
(``action.yml``, composite) step by step from this checkout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from oauth2_sync import __version__
from support.kit import ACTION, ROOT, TIMEOUT, WORKFLOWS, bash

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
OAUTH2_SYNC_ACTION = re.compile(r"[\w.-]+/oauth2-sync@(v[\w.-]+)")
"""``uses:`` of the oauth2-sync action: the tests run it from this checkout."""
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


def read_outputs(path: Path) -> dict[str, str]:
    """The ``name=value`` lines a step appended to $GITHUB_OUTPUT."""
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def install_from_checkout(temp: Path) -> None:
    """What the action's install step leaves in $RUNNER_TEMP, made from this checkout as
    the test process runs it (its interpreter, coverage included): the install step then
    finds oauth2-sync installed from the action's path, as a second use in a job does."""
    venv = temp / "oauth2-sync-action"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    wrapper = venv / "bin" / "oauth2-sync"
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m oauth2_sync "$@"\n')
    wrapper.chmod(0o755)
    (venv / "installed-from").write_text(str(ROOT))


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

    The oauth2-sync action runs step by step from this checkout; other ``uses:`` steps
    but github-script are recorded, not run (checkout and setup-python are what the
    workspace and PATH already are)."""

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
        self.temp = state_dir / "runner-temp"
        install_from_checkout(self.temp)
        self.path: list[str] = []
        """Folders steps added to PATH ($GITHUB_PATH), newest first."""
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
        self.path = []
        steps: dict[str, Any] = {}
        results: list[StepResult] = []
        for index, step in enumerate(job["steps"]):
            name = step.get("name") or step.get("uses") or f"step {index}"
            context = self.context(steps)
            failed = any(r.outcome == "failure" for r in results)
            cancelled = any(r.outcome == "cancelled" for r in results)
            if not self.condition(step.get("if"), context, failed, cancelled):
                result = StepResult(name, "skipped", {}, "")
            else:
                env = {
                    **self.env,
                    **self.resolve(document.get("env", {}), context),
                    **self.resolve(job.get("env", {}), context),
                    **self.resolve(step.get("env", {}), context),
                    "CI": "true", "GITHUB_ACTIONS": "true", "RUNNER_TEMP": str(self.temp),
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
        if "run" in step:
            return self.run_shell(name, step["run"], env)
        given = self.resolve(step.get("with", {}), context)
        self.used.append({"uses": step["uses"], "with": given})
        reference = OAUTH2_SYNC_ACTION.fullmatch(step["uses"])
        if reference:
            # The tag a workflow pins is the release it was written for: this checkout.
            assert reference.group(1) == f"v{__version__}", step["uses"]
            return self.run_action(name, given, env)
        if step["uses"].split("@")[0] != "actions/github-script":
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
        return StepResult(name, "success" if done.returncode == 0 else "failure",
                          read_outputs(output), done.stdout + done.stderr)

    def run_action(self, name: str, given: Mapping[str, str], env: dict[str, str]) -> StepResult:
        """The oauth2-sync action (``action.yml`` of this checkout, composite): its inputs
        from ``with:`` and the defaults, its ``runs.steps`` in order, its outputs."""
        action = yaml.safe_load(ACTION.read_text())
        assert action["runs"]["using"] == "composite"
        declared: dict[str, Any] = action["inputs"]
        assert set(given) <= set(declared), f"{name}: inputs the action does not declare"
        inputs = {key: str(given.get(key, spec.get("default", ""))) for key, spec in declared.items()}
        assert all(inputs[k] for k, spec in declared.items() if spec.get("required")), inputs
        steps: dict[str, Any] = {}
        logs: list[str] = []
        outcome = "success"
        for step in action["runs"]["steps"]:
            context = {"inputs": inputs, "steps": steps, "github": {"action_path": str(ROOT)}}
            if not self.condition(step.get("if"), context, outcome == "failure",
                                  outcome == "cancelled"):
                continue
            assert step["shell"] == "bash", step
            step_env = {**env, **self.resolve(step.get("env", {}), context),
                        "GITHUB_ACTION_PATH": str(ROOT)}
            result = self.run_shell(name, step["run"], step_env)
            logs.append(result.log)
            if result.outcome != "success":
                outcome = result.outcome
            if "id" in step:
                steps[step["id"]] = {"outcome": result.outcome, "outputs": result.outputs}
        context = {"inputs": inputs, "steps": steps}
        values = self.resolve({k: o["value"] for k, o in action["outputs"].items()}, context)
        # Unset outputs read as '' in expressions, as missing keys do here.
        return StepResult(name, outcome, {k: v for k, v in values.items() if v}, "".join(logs))

    def run_shell(self, name: str, script: str, env: dict[str, str]) -> StepResult:
        """A ``run:`` step in bash, with $GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY and
        $GITHUB_PATH (read back: later steps find the folders it added on PATH)."""
        assert EXPRESSION.search(script) is None, f"{name}: expressions belong in env:"
        output, path = self.state_dir / "github-output", self.state_dir / "github-path"
        output.write_text("")
        path.write_text("")
        env.update(GITHUB_OUTPUT=str(output), GITHUB_PATH=str(path),
                   GITHUB_STEP_SUMMARY=str(self.state_dir / "github-step-summary"))
        env["PATH"] = os.pathsep.join([*self.path, env.get("PATH", "")])
        if self.cancel is not None and self.cancel[0] == name:
            result = self.run_cancellable(name, script, env, self.cancel[1])
        else:
            done = bash(script, self.workspace, env)
            outcome = "success" if done.returncode == 0 else "failure"
            result = StepResult(name, outcome, read_outputs(output), done.stdout)
        self.path = [*reversed(path.read_text().split()), *self.path]
        return result

    def run_cancellable(
        self, name: str, script: str, env: Mapping[str, str], when: threading.Event
    ) -> StepResult:
        """The step as GitHub cancels it, should ``when`` be set while it runs: SIGINT to
        the step's process, SIGTERM after a grace period, then SIGKILL to all of its
        processes (the runner's sequence, with shorter pauses), and at the end of the job
        to those left over."""
        process = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=self.workspace, env=dict(env), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )
        stdout = process.stdout
        assert stdout is not None
        log: list[str] = []

        def read() -> None:
            with stdout:  # closed at EOF: an open pipe is a ResourceWarning
                log.append(stdout.read())

        reader = threading.Thread(target=read)
        reader.start()
        deadline = time.monotonic() + TIMEOUT
        while process.poll() is None and not when.wait(0.05):
            assert time.monotonic() < deadline, f"{name}: never reached the point to cancel at"
        cancelled = process.poll() is None
        for signum, grace in ((signal.SIGINT, 5.0), (signal.SIGTERM, 2.5), (signal.SIGKILL, 0)):
            if process.poll() is not None:
                break
            if signum == signal.SIGKILL:
                os.killpg(process.pid, signum)
            else:
                os.kill(process.pid, signum)
            try:
                process.wait(grace or TIMEOUT)
            except subprocess.TimeoutExpired:
                continue
        if cancelled:
            # What is left of the step's processes (the children of a process that
            # exited on SIGTERM) the runner kills when the job ends.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        reader.join(TIMEOUT)
        outputs = read_outputs(Path(env["GITHUB_OUTPUT"]))
        outcome = "cancelled" if cancelled else ("success" if process.returncode == 0 else "failure")
        return StepResult(name, outcome, outputs, "".join(log))
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
