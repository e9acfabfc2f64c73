"""Access review: whether a change widens, narrows or leaves alone what a client can do.

Every rule is one row of ``RULES`` (the table ``docs/explanation/access-review.md``
shows, kept equal by a test); which rules a field's change can raise is one entry of
``FIELD_CHECKS``, so a new field is one row there (a field without one is ``neutral``,
with a reason saying it decides nothing about access). A change's class is the widest
of its fields' classes; a create widens and a delete narrows.

The classes are for reviewers, not a verdict: ``widens`` means "someone responsible
for access should look", and the reason says what to look at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Literal, get_args
from urllib.parse import urlsplit

from oauth2_sync import durations
from oauth2_sync.diff import FieldChange, FieldValue
from oauth2_sync.model import effective_ttl
from oauth2_sync.records import NamedTuple
from oauth2_sync.urls import is_loopback

RiskClass = Literal["widens", "narrows", "neutral"]
"""What a change does to access: more (``widens``), less (``narrows``), or neither."""
RISK_CLASSES: tuple[RiskClass, ...] = get_args(RiskClass)
RuleId = Literal[
    "client-created", "client-deleted",
    "redirect-new-host", "redirect-added", "redirect-http", "redirect-loopback",
    "redirect-private-use", "redirect-removed",
    "grant-deprecated", "grant-added", "grant-removed",
    "scope-added", "scope-removed",
    "lifetime-longer", "lifetime-shorter", "lifetime-same",
    "partner-opened", "partner-restricted",
    "client-public", "client-confidential",
    "no-access-field",
]
DEPRECATED_GRANTS = frozenset({"implicit", "password"})
"""Grants RFC 9700 (OAuth 2.0 Security Best Current Practice) says not to use."""
PUBLIC_AUTH_METHOD = "none"
"""``token_endpoint_auth_method`` of a public client: no secret proves who calls."""
AUTH_METHOD_FIELD = "token_endpoint_auth_method"


class Rule(NamedTuple):
    """One row of the rule table: what triggers it, its class, why, and its short tag
    (counted in the plan's last line: ``1 new redirect host``)."""

    id: RuleId
    field: str
    risk: RiskClass
    when: str
    why: str
    tag: str
    plural: str = ""
    """The tag for several changes; default: the tag with an ``s``."""

    def counted(self, n: int) -> str:
        """``1 new client``, ``2 new clients``."""
        return f"{n} {self.tag if n == 1 else self.plural or self.tag + 's'}"


RULES: tuple[Rule, ...] = (
    Rule("client-created", "(client)", "widens", "a client is created",
         "a new client can obtain tokens", "new client"),
    Rule("client-deleted", "(client)", "narrows", "a client is deleted",
         "its tokens can no longer be obtained", "deleted client"),
    Rule("redirect-new-host", "redirect_uris", "widens",
         "a URI is added on a host (or scheme) no URI of the client had",
         "codes and tokens can be sent to a new place", "new redirect host"),
    Rule("redirect-added", "redirect_uris", "widens", "a URI is added on a host already used",
         "codes and tokens can be sent to a new path", "new redirect URI"),
    Rule("redirect-http", "redirect_uris", "widens",
         "an http URI is added for a host that had https (scheme downgraded)",
         "codes travel unencrypted", "redirect downgraded to http",
         "redirects downgraded to http"),
    Rule("redirect-loopback", "redirect_uris", "widens", "a loopback URI is added",
         "any program on the user's machine can receive codes", "loopback redirect"),
    Rule("redirect-private-use", "redirect_uris", "widens",
         "a private-use scheme URI (com.example.app:/cb) is added",
         "any app claiming the scheme can receive codes", "private-use redirect"),
    Rule("redirect-removed", "redirect_uris", "narrows", "a URI is removed",
         "one place fewer to send codes and tokens", "redirect removed",
         "redirects removed"),
    Rule("grant-deprecated", "grant_types", "widens", "grant implicit or password is added",
         "deprecated by RFC 9700", "deprecated grant"),
    Rule("grant-added", "grant_types", "widens", "any other grant is added",
         "a new way to obtain tokens", "new grant"),
    Rule("grant-removed", "grant_types", "narrows", "a grant is removed",
         "one way fewer to obtain tokens", "grant removed",
         "grants removed"),
    Rule("scope-added", "scopes", "widens", "a scope is added",
         "tokens allow more", "new scope"),
    Rule("scope-removed", "scopes", "narrows", "a scope is removed",
         "tokens allow less", "scope removed",
         "scopes removed"),
    Rule("lifetime-longer", "access_token_ttl, refresh_token_ttl", "widens",
         "the effective lifetime gets longer or never expires",
         "a stolen token works longer", "longer token lifetime"),
    Rule("lifetime-shorter", "access_token_ttl, refresh_token_ttl", "narrows",
         "the effective lifetime gets shorter", "a stolen token works less long",
         "shorter token lifetime"),
    Rule("lifetime-same", "access_token_ttl, refresh_token_ttl", "neutral",
         "pinned to the platform default or back", "the effective lifetime is unchanged",
         "same lifetime"),
    Rule("partner-opened", "restrict_to_partner_users", "widens",
         "restrict_to_partner_users becomes false", "every user can sign in, not only the "
         "partner's", "partner restriction lifted",
         "partner restrictions lifted"),
    Rule("partner-restricted", "restrict_to_partner_users", "narrows",
         "restrict_to_partner_users becomes true", "only the partner's users can sign in",
         "partner restriction added",
         "partner restrictions added"),
    Rule("client-public", AUTH_METHOD_FIELD, "widens",
         "a confidential client becomes public (method none)",
         "no secret is needed to use the client", "client made public",
         "clients made public"),
    Rule("client-confidential", AUTH_METHOD_FIELD, "narrows",
         "a public client becomes confidential, or changes its method",
         "a secret is needed to use the client", "client made confidential",
         "clients made confidential"),
    Rule("no-access-field", "any other field (name, email, ...)", "neutral",
         "any other field changes", "it decides nothing about access", "other field"),
)
RULE_BY_ID: dict[RuleId, Rule] = {rule.id: rule for rule in RULES}


class Finding(NamedTuple):
    """One rule that a field change raised, with its reason for this change."""

    rule: RuleId
    reason: str

    @property
    def risk(self) -> RiskClass:
        """The class of the rule."""
        return RULE_BY_ID[self.rule].risk


class FieldRisk(NamedTuple):
    """A field change's class (the widest of its findings) and findings."""

    field: str
    risk: RiskClass
    findings: tuple[Finding, ...]

    @property
    def reasons(self) -> tuple[str, ...]:
        """The one-line reasons, in the order found."""
        return tuple(f.reason for f in self.findings)


class ChangeRisk(NamedTuple):
    """A change's class (the widest of its fields'), its reasons and its fields' risks."""

    risk: RiskClass
    findings: tuple[Finding, ...]
    fields: tuple[FieldRisk, ...] = ()

    @property
    def reasons(self) -> tuple[str, ...]:
        """The reasons that make the change's class, widest first."""
        return tuple(f.reason for f in self.findings if f.risk == self.risk)

    @property
    def rules(self) -> tuple[RuleId, ...]:
        """The rules of the findings of the change's class, each once, in order."""
        return tuple(dict.fromkeys(f.rule for f in self.findings if f.risk == self.risk))

    @property
    def tags(self) -> tuple[str, ...]:
        """The tags of those rules (what the plan's last line counts)."""
        return tuple(RULE_BY_ID[rule].tag for rule in self.rules)


_ORDER: dict[RiskClass, int] = {"neutral": 0, "narrows": 1, "widens": 2}


def widest(classes: Iterable[RiskClass]) -> RiskClass:
    """``widens`` over ``narrows`` over ``neutral`` (the empty set is ``neutral``)."""
    return max(classes, key=_ORDER.__getitem__, default="neutral")


def _strings(value: FieldValue) -> tuple[str, ...]:
    return value if isinstance(value, tuple) else ()


def _origin(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    return parts.scheme.lower(), (parts.hostname or "").lower()


def _redirects(before: FieldValue, after: FieldValue) -> list[Finding]:
    old, new = _strings(before), _strings(after)
    origins = {_origin(u) for u in old}
    https_hosts = {host for scheme, host in origins if scheme == "https"}
    found: list[Finding] = []
    for uri in sorted(set(new) - set(old)):
        scheme, host = _origin(uri)
        shown = repr(uri)
        if scheme not in ("http", "https"):
            found.append(Finding("redirect-private-use", f"new private-use redirect URI {shown}"))
        elif is_loopback(host):
            found.append(Finding("redirect-loopback", f"new loopback redirect URI {shown}"))
        elif scheme == "http" and host in https_hosts:
            found.append(Finding("redirect-http", f"redirect URI {shown} downgrades "
                                 f"{host} from https to http"))
        elif (scheme, host) not in origins:
            found.append(Finding("redirect-new-host", f"new redirect URI {shown} on a new "
                                 f"host {host}"))
        else:
            found.append(Finding("redirect-added", f"new redirect URI {shown} on known "
                                 f"host {host}"))
    found.extend(
        Finding("redirect-removed", f"redirect URI {u!r} removed")
        for u in sorted(set(old) - set(new))
    )
    return found


def _grants(before: FieldValue, after: FieldValue) -> list[Finding]:
    old, new = set(_strings(before)), set(_strings(after))
    found = [
        Finding("grant-deprecated", f"grant {g} added, deprecated by RFC 9700")
        if g in DEPRECATED_GRANTS else Finding("grant-added", f"grant {g} added")
        for g in sorted(new - old)
    ]
    found.extend(Finding("grant-removed", f"grant {g} removed") for g in sorted(old - new))
    return found


def _scopes(before: FieldValue, after: FieldValue) -> list[Finding]:
    # Any scope, not only read/write: a registry may offer its own vocabulary, and
    # adding an unknown scope is still more than before.
    old, new = set(_strings(before)), set(_strings(after))
    found = [Finding("scope-added", f"scope {s!r} added") for s in sorted(new - old)]
    found.extend(Finding("scope-removed", f"scope {s!r} removed") for s in sorted(old - new))
    return found


def _seconds(value: FieldValue) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _human(seconds: int | None) -> str:
    if seconds == durations.NEVER:
        return "never"
    short = durations.shortest(seconds)
    return f"{short}s" if isinstance(short, int) else str(short)


def _lifetime(field: str) -> Callable[[FieldValue, FieldValue], list[Finding]]:
    label = field.removesuffix("_ttl").replace("_", " ") + " lifetime"

    def check(before: FieldValue, after: FieldValue) -> list[Finding]:
        old = effective_ttl(field, _seconds(before))
        new = effective_ttl(field, _seconds(after))
        text = f"{label} {_human(old)} -> {_human(new)}"
        if old == new:
            return [Finding("lifetime-same", f"{text} (effective value unchanged)")]
        # Never expiring is longer than any lifetime.
        longer = new == durations.NEVER or (old != durations.NEVER and (new or 0) > (old or 0))
        return [Finding("lifetime-longer" if longer else "lifetime-shorter", text)]

    return check


def _partner(before: FieldValue, after: FieldValue) -> list[Finding]:
    if after is False:
        return [Finding("partner-opened", "restrict_to_partner_users false: any user, "
                        "not only the partner's")]
    return [Finding("partner-restricted", "restrict_to_partner_users true: only the "
                    "partner's users")]


def _auth_method(before: FieldValue, after: FieldValue) -> list[Finding]:
    if after == PUBLIC_AUTH_METHOD and before != PUBLIC_AUTH_METHOD:
        return [Finding("client-public", f"made public ({AUTH_METHOD_FIELD} {before} -> none): "
                        "no secret needed")]
    return [Finding("client-confidential", f"{AUTH_METHOD_FIELD} {before} -> {after}")]


FIELD_CHECKS: dict[str, Callable[[FieldValue, FieldValue], list[Finding]]] = {
    "redirect_uris": _redirects,
    "grant_types": _grants,
    "scopes": _scopes,
    "access_token_ttl": _lifetime("access_token_ttl"),
    "refresh_token_ttl": _lifetime("refresh_token_ttl"),
    "restrict_to_partner_users": _partner,
    AUTH_METHOD_FIELD: _auth_method,
}
"""The rules each field's change can raise; a field absent here is ``no-access-field``."""


def assess_field(change: FieldChange) -> FieldRisk:
    """The class and findings of one field change."""
    check = FIELD_CHECKS.get(change.field)
    if check is None:
        findings = [Finding("no-access-field", f"{change.field} decides nothing about access")]
    else:
        findings = check(change.before, change.after)
    return FieldRisk(change.field, widest(f.risk for f in findings), tuple(findings))


def assess(action: str, client_id: str, fields: Sequence[FieldChange] = ()) -> ChangeRisk:
    """The class of a change: a create widens, a delete narrows, an update is the widest
    of its fields."""
    if action == "create":
        return ChangeRisk("widens", (Finding("client-created", f"new client {client_id!r}"),))
    if action == "delete":
        return ChangeRisk("narrows", (Finding("client-deleted", f"client {client_id!r} "
                                              "deleted"),))
    risks = tuple(assess_field(f) for f in fields)
    ordered = sorted(
        (finding for r in risks for finding in r.findings),
        key=lambda f: -_ORDER[f.risk],
    )
    return ChangeRisk(widest(r.risk for r in risks), tuple(ordered), risks)


def widening_summary(risks: Iterable[ChangeRisk]) -> str:
    """``2 changes widen access (1 new redirect host, 1 longer token lifetime)``, or
    ``""`` when none does; each change counts once per tag."""
    widening = [r for r in risks if r.risk == "widens"]
    if not widening:
        return ""
    counts: dict[RuleId, int] = {}
    for r in widening:
        for rule in r.rules:
            counts[rule] = counts.get(rule, 0) + 1
    n = len(widening)
    parts = ", ".join(RULE_BY_ID[rule].counted(count) for rule, count in counts.items())
    return f"{n} {'change widens' if n == 1 else 'changes widen'} access ({parts})"


def rule_table() -> str:
    """The rule table as Markdown, as ``docs/explanation/access-review.md`` shows it (a
    test keeps the page equal to this)."""
    rows = [
        "| Rule | Field | Class | When | Why | Counted as |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    rows.extend(
        f"| `{r.id}` | {r.field} | **{r.risk}** | {r.when} | {r.why} | {r.tag} |" for r in RULES
    )
    return "\n".join(rows) + "\n"
