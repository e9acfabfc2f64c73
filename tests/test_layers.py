"""The import graph of the package follows the documented layer order (docs/development/contributing.md, "Layout").

Every module's imports are read with ``ast`` (those inside functions and under
``TYPE_CHECKING`` too: a lazy import is still a dependency) and checked against
``LAYERS``: a module may import its own group and any group of a lower rank, never a
group of a higher rank (upward) nor another group of the same rank (sideways). The
reference server stands apart: it uses the leaves, the loader and the model, and no
adapter; only the commands (``serve``) and ``local:`` (its store) use it.

``KNOWN`` would list, edge by edge, a violation allowed for a stated reason; it is
empty. A new violation, or a module the table does not place, fails the test.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import oauth2_sync

PACKAGE = "oauth2_sync"
ROOT = Path(oauth2_sync.__file__).parent

# (rank, group, module prefixes). A prefix matches the module and its submodules (the
# package name only itself); the longest matching prefix wins. Lower ranks are imported by higher ones, never the reverse.
LAYERS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    # Leaf utilities: import nothing of the package but other leaves.
    (0, "leaves", (
        "oauth2_sync", "oauth2_sync.errors", "oauth2_sync.durations", "oauth2_sync.urls",
        "oauth2_sync.safetext", "oauth2_sync.secret", "oauth2_sync.clock",
        "oauth2_sync.gitinfo", "oauth2_sync.paths", "oauth2_sync.etags", "oauth2_sync.files",
        "oauth2_sync.yaml11", "oauth2_sync.background", "oauth2_sync.records",
        # The fast paths that need nothing of the package (the schema one is validation's).
        "oauth2_sync.fast", "oauth2_sync.fast.gcpause", "oauth2_sync.fast.glob",
        "oauth2_sync.fast.prefix", "oauth2_sync.fast.redirect", "oauth2_sync.fast.resolver",
    )),
    # Reading files, and the normal form every later stage speaks.
    (1, "loader", ("oauth2_sync.loader",)),
    # What each registry can hold: data on the normal form, read by validation too.
    (1, "model", ("oauth2_sync.model", "oauth2_sync.registry.capabilities")),
    # Validation: the schema check, the settings and the OAuth rules.
    (2, "validation", (
        "oauth2_sync.schemacheck", "oauth2_sync.settings", "oauth2_sync.settingscheck",
        "oauth2_sync.validation", "oauth2_sync.sources",
        "oauth2_sync.redirects", "oauth2_sync.fast.schema",
    )),
    (3, "diff", ("oauth2_sync.diff",)),
    # The one interface every adapter implements, and the factory that picks one.
    (3, "registry-interface", ("oauth2_sync.registry.base",)),
    # Access review: the class of each change, read by the plan and the renderers.
    (4, "risk", ("oauth2_sync.risk",)),
    (4, "adapters", (
        "oauth2_sync.registry.http", "oauth2_sync.registry.local",
        "oauth2_sync.registry.rfc7592", "oauth2_sync.registry.state",
        "oauth2_sync.registry.wire", "oauth2_sync.registry.transport",
        "oauth2_sync.registry.api", "oauth2_sync.registry.dcr", "oauth2_sync.registry.metadata",
        "oauth2_sync.registry.retry", "oauth2_sync.registry.session",
        "oauth2_sync.registry.tokens", "oauth2_sync.registry.compat",
    )),
    # The reference registry: a server of its own, not a client-side adapter.
    (4, "refserver", ("oauth2_sync.refserver",)),
    (5, "registry-factory", ("oauth2_sync.registry",)),
    # Library workflows, each its own group.
    (6, "plan", (
        "oauth2_sync.plan", "oauth2_sync.plandata", "oauth2_sync.plandoc",
        "oauth2_sync.planread", "oauth2_sync.planfile",
    )),
    (6, "drift", ("oauth2_sync.drift", "oauth2_sync.driftdata", "oauth2_sync.driftdoc")),
    (6, "export", ("oauth2_sync.export",)),
    (6, "fmt", ("oauth2_sync.fmt",)),
    (6, "sink", ("oauth2_sync.sink",)),
    (6, "journal", ("oauth2_sync.journal",)),
    (7, "apply", ("oauth2_sync.apply", "oauth2_sync.results", "oauth2_sync.parallel")),
    # Enforcing the access review on a forge: reads a plan, talks to GitHub or GitLab.
    (7, "review", ("oauth2_sync.review",)),
    (8, "workflow", ("oauth2_sync.workflow",)),
    # Renderers share one helper module and never import each other.
    (9, "render-helpers", ("oauth2_sync.render", "oauth2_sync.render.common")),
    (10, "render-text", ("oauth2_sync.render.text",)),
    (10, "render-markdown", ("oauth2_sync.render.markdown",)),
    (10, "render-json", ("oauth2_sync.render.json",)),
    (10, "render-drift", ("oauth2_sync.render.drift",)),
    (10, "render-diagnostics", ("oauth2_sync.render.diagnostics",)),
    # The entry points that pick a renderer by format.
    (11, "render-entry", ("oauth2_sync.render.plan", "oauth2_sync.render.report")),
    (12, "commands", (
        "oauth2_sync.cli", "oauth2_sync.commands", "oauth2_sync.__main__",
    )),
)

REFSERVER_MAY_IMPORT = frozenset({"leaves", "loader", "model", "refserver"})
"""The reference server shares the domain's constants and the loader, nothing else."""
ADAPTERS_USING_REFSERVER = frozenset({"oauth2_sync.registry.local"})
"""``local:`` runs on the reference server's store; no other adapter touches the server."""

# (importer, imported) -> why the edge is allowed for now. Empty: every violation the
# restructuring of #17 found was removed; a new one needs a reason here, or a fix.
KNOWN: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    """The dotted name of a module file of the package."""
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports(name: str) -> set[str]:
    """Every module of the package that ``name`` imports, wherever the import stands."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import sub` imports the submodule when there is one.
            found.update(
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            )
    return {m for m in found if m in MODULES and m != name}


def group_of(name: str) -> tuple[int, str]:
    """The rank and group of a module: its longest matching prefix in ``LAYERS``."""
    best: tuple[int, int, str] | None = None
    for rank, group, prefixes in LAYERS:
        for prefix in prefixes:
            # The package itself (its __version__) is a leaf; its modules are not.
            below = prefix != PACKAGE and name.startswith(prefix + ".")
            if (name == prefix or below) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), rank, group)
    assert best is not None, f"{name} is in no layer: add it to LAYERS"
    return best[1], best[2]


def violation(importer: str, imported: str) -> str | None:
    """Why the edge breaks the layer order, or ``None`` when it keeps it."""
    rank, group = group_of(importer)
    their_rank, their_group = group_of(imported)
    if group == their_group:
        return None
    if group == "refserver" and their_group not in REFSERVER_MAY_IMPORT:
        return f"the reference server imports {their_group}"
    if their_group == "refserver":
        # The `serve` command runs it; `local:` keeps its clients in its store.
        if group == "commands" or importer in ADAPTERS_USING_REFSERVER:
            return None
        return f"{group} imports the reference server"
    if their_rank > rank:
        return f"upward: {group} (rank {rank}) imports {their_group} (rank {their_rank})"
    if their_rank == rank:
        return f"sideways: {group} imports {their_group}, both of rank {rank}"
    return None


def edges() -> list[tuple[str, str]]:
    """Every import edge inside the package."""
    return sorted((name, dep) for name in MODULES for dep in imports(name))


def test_every_module_has_a_layer() -> None:
    unplaced = []
    for name in MODULES:
        try:
            group_of(name)
        except AssertionError:
            unplaced.append(name)
    assert unplaced == []


def test_no_import_breaks_the_layer_order() -> None:
    found = {
        (a, b): why for a, b in edges() if (why := violation(a, b)) and (a, b) not in KNOWN
    }
    assert found == {}


def test_every_known_violation_still_exists() -> None:
    # An edge a refactor removed leaves the allow-list with it, so it cannot come back.
    current = {(a, b) for a, b in edges() if violation(a, b)}
    assert sorted(set(KNOWN) - current) == []


@pytest.mark.parametrize(
    ("importer", "imported", "broken"),
    [
        ("oauth2_sync.model", "oauth2_sync.plan", True),
        ("oauth2_sync.plan", "oauth2_sync.model", False),
        ("oauth2_sync.plan", "oauth2_sync.drift", True),
        ("oauth2_sync.render.text", "oauth2_sync.render", False),
        ("oauth2_sync.render.text", "oauth2_sync.render.json", True),
        ("oauth2_sync.registry.http", "oauth2_sync.refserver.store", True),
        ("oauth2_sync.registry.local", "oauth2_sync.refserver.store", False),
        ("oauth2_sync.refserver.server", "oauth2_sync.registry.http", True),
        ("oauth2_sync.refserver.store", "oauth2_sync.model", False),
        ("oauth2_sync.errors", "oauth2_sync.loader", True),
        ("oauth2_sync.plan", "oauth2_sync.refserver.store", True),
        ("oauth2_sync.commands.registry", "oauth2_sync.refserver.server", False),
    ],
)
def test_the_rules_tell_edges_apart(importer: str, imported: str, broken: bool) -> None:
    assert (violation(importer, imported) is not None) is broken
