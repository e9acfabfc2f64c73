"""GitHub Actions, run locally: the jobs of the shipped workflows step by step as
GitHub's runner runs them, ``actions/github-script`` steps in node against an
in-memory stand-in of the GitHub REST calls they make.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from support.kit import INSTALL_STEP, PLACEHOLDER, TIMEOUT, WORKFLOWS, bash

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

        def read() -> None:
            with stdout:  # closed at EOF: an open pipe is a ResourceWarning
                log.append(stdout.read())

        reader = threading.Thread(target=read)
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
