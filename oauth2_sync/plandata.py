"""The plan as frozen, sorted data: ``Plan`` and its ``Change``s, ``Summary`` and ``Limit``s.

``plan.build_plan`` makes one; ``plandoc`` writes it as JSON and ``planread`` reads it
back; the renderers and apply read it. Re-exported by ``oauth2_sync.plan``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal, get_args

from oauth2_sync import __version__
from oauth2_sync.diff import FieldChange
from oauth2_sync.errors import Diagnostic
from oauth2_sync.model import PLATFORM_DEFAULTS, Client, TtlDefaults
from oauth2_sync.records import NamedTuple

if TYPE_CHECKING:
    from oauth2_sync.risk import ChangeRisk

FORMAT_VERSION = 3
"""Version of the JSON plan document; bumped on any incompatible change.

2 added ``settings_sha256`` and ``files``, without which ``apply PLANFILE`` cannot tell
whether the plan still matches the configuration: plan files of version 1 are refused.
3 added the access review (``risk`` and ``reasons`` per change and per field) and
``uncommitted``: a reader of version 2 would apply a plan whose widening changes it
cannot show, so plan files of version 2 are refused too."""

Action = Literal["create", "update", "delete"]
ACTIONS: tuple[Action, ...] = get_args(Action)

REFUSED_RULE: Final = "plan-refused"
"""Rule of the error naming a change of a saved plan that apply refuses (``planfile``);
the renderers count them apart."""


class Change(NamedTuple):
    """What apply does to one client.

    ``before`` is the registry's client (update, delete), ``after`` the desired one
    (create, update); ``fields`` lists the differing fields of an update; ``version`` is
    the registry version the change was planned against (``None`` for a create);
    ``file`` and ``line`` say where the desired client is declared.
    """

    action: Action
    client_id: str
    before: Client | None = None
    after: Client | None = None
    fields: tuple[FieldChange, ...] = ()
    version: str | None = None
    file: str | None = None
    line: int | None = None

    @property
    def partner(self) -> str:
        """The partner of the client (the desired one when both exist)."""
        client = self.after or self.before
        assert client is not None, "a change has a before or an after"
        return client.partner

    @property
    def risk(self) -> ChangeRisk:
        """Whether the change widens, narrows or leaves access alone, and why."""
        from oauth2_sync.risk import assess  # a plan without changes never needs it

        return assess(self.action, self.client_id, self.fields)


class Summary(NamedTuple):
    """Counts of a plan."""

    create: int
    update: int
    delete: int
    no_op: int
    unmanaged: int
    managed: int
    """Managed clients in the registry when the plan was made (the base of the safety shares)."""
    undeclared: int = 0
    """Managed clients no file declares, kept because prune is off."""


class Limit(NamedTuple):
    """One safety limit a plan exceeds: ``what`` is counted, ``figure`` is the plan's
    count, ``maximum`` the limit, ``setting`` its name under ``safety``."""

    what: str
    figure: str
    maximum: str
    setting: str

    def __str__(self) -> str:
        return f"{self.what}: {self.figure} exceeds {self.maximum} (safety.{self.setting})"


class Plan(NamedTuple):
    """Everything apply needs, and everything a reviewer should see."""

    registry: str
    changes: tuple[Change, ...]
    no_op: int
    unmanaged: int
    managed: int
    versions: tuple[tuple[str, str], ...]
    """``(client_id, version)`` of every client read, sorted by client ID."""
    commit: str | None = None
    prune: bool = False
    targets: tuple[str, ...] = ()
    undeclared: int = 0
    """Managed clients no file declares, left alone because prune is off (with prune
    they are deletes)."""
    errors: tuple[Diagnostic, ...] = ()
    """Declared clients left out of the plan because the registry cannot hold them
    (``Registry.unsupported``): each one an error, so the plan fails (exit 1) while the
    other clients are still planned and applied."""
    created_at: str = ""
    exceeded: tuple[Limit, ...] = ()
    """The safety limits of the settings the plan exceeds, as they were when it was
    made: the verdict a reviewer sees. ``apply`` checks the limits again itself."""
    tool_version: str = __version__
    format_version: int = FORMAT_VERSION
    settings_sha256: str | None = None
    """SHA-256 (hex) of the settings file the plan was made under."""
    files: tuple[tuple[str, str], ...] = ()
    """``(path, sha256)`` of every client file that declared a client, the path relative
    to the settings' folder, sorted: with ``commit``, what tells a stale saved plan."""
    uncommitted: tuple[str, ...] | None = None
    """The files the settings name (itself included) that differ from ``commit`` in the
    working tree, relative to the settings' folder; ``None`` outside a git repository."""
    ttl_defaults: TtlDefaults = PLATFORM_DEFAULTS
    """The registry's default lifetimes (``Capabilities``), for the lifetime comments."""

    @property
    def summary(self) -> Summary:
        """How many creates, updates, deletes, no-ops and unmanaged clients."""
        counts = dict.fromkeys(ACTIONS, 0)
        for change in self.changes:
            counts[change.action] += 1
        return Summary(
            counts["create"], counts["update"], counts["delete"],
            self.no_op, self.unmanaged, self.managed, self.undeclared,
        )

    @property
    def has_changes(self) -> bool:
        """Whether apply would write anything."""
        return bool(self.changes)


def secret_creates(plan: Plan) -> list[str]:
    """The clients ``plan`` creates that get a secret: every create but public clients'
    (``token_endpoint_auth_method: none``), which need no sink."""
    return [
        c.client_id for c in plan.changes
        if c.action == "create" and c.after is not None and not c.after.public
    ]
