"""The access review (``oauth2_sync.risk``): every rule of the table on a change that
raises it, its class and reason, and its rendering in text, Markdown and JSON (golden
files under tests/golden/risk/; UPDATE_GOLDEN=1 rewrites them).
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest

from oauth2_sync.diff import FieldChange, diff_clients
from oauth2_sync.model import Client
from oauth2_sync.plan import Change, Plan
from oauth2_sync.render import plan as render_plan
from oauth2_sync.risk import (
    RULES,
    ChangeRisk,
    FieldRisk,
    assess,
    assess_field,
    rule_table,
    widening_summary,
    widest,
)

GOLDEN = Path(__file__).parent / "golden" / "risk"
DOC = Path(__file__).parents[1] / "docs" / "explanation" / "access-review.md"
BASE = Client(
    "acme-portal", "Portal", "portal@acme.example", "acme",
    grant_types=("authorization_code", "refresh_token"),
    redirect_uris=("https://portal.acme.example/cb",), access_token_ttl=3600,
)


def update(**after: object) -> Change:
    new = BASE._replace(**after)  # type: ignore[arg-type]
    return Change("update", BASE.client_id, before=BASE, after=new,
                  fields=diff_clients(BASE, new), version='W/"1"', file="clients/acme.yaml",
                  line=2)


def method_change(before: str, after: str) -> Change:
    # The field is not in this model yet (clients public or confidential): the rule is
    # keyed by its name, so a field change carrying it is classed already.
    field = FieldChange("token_endpoint_auth_method", before, after)
    return update(name="Portal")._replace(fields=(field,))


URIS = BASE.redirect_uris
# rule -> (change, class, reason of the change)
CASES: dict[str, tuple[Change, str, str]] = {
    "client-created": (Change("create", "acme-new", after=BASE._replace(client_id="acme-new"),
                              file="clients/acme.yaml", line=2),
                       "widens", "new client 'acme-new'"),
    "client-deleted": (Change("delete", BASE.client_id, before=BASE, version='W/"1"'),
                       "narrows", "client 'acme-portal' deleted"),
    "redirect-new-host": (update(redirect_uris=(*URIS, "https://evil.example/cb")), "widens",
                          "new redirect URI 'https://evil.example/cb' on a new host evil.example"),
    "redirect-added": (update(redirect_uris=(*URIS, "https://portal.acme.example/cb2")),
                       "widens", "new redirect URI 'https://portal.acme.example/cb2' on known "
                       "host portal.acme.example"),
    "redirect-http": (update(redirect_uris=(*URIS, "http://portal.acme.example/cb")), "widens",
                      "redirect URI 'http://portal.acme.example/cb' downgrades "
                      "portal.acme.example from https to http"),
    "redirect-loopback": (update(redirect_uris=(*URIS, "http://127.0.0.1:8400/cb")), "widens",
                          "new loopback redirect URI 'http://127.0.0.1:8400/cb'"),
    "redirect-private-use": (update(redirect_uris=("com.acme.app:/cb", *URIS)), "widens",
                             "new private-use redirect URI 'com.acme.app:/cb'"),
    "redirect-removed": (update(redirect_uris=()), "narrows",
                         "redirect URI 'https://portal.acme.example/cb' removed"),
    "grant-deprecated": (update(grant_types=("authorization_code", "implicit", "refresh_token")),
                         "widens", "grant implicit added, deprecated by RFC 9700"),
    "grant-added": (update(grant_types=("authorization_code", "client_credentials",
                                        "refresh_token")),
                    "widens", "grant client_credentials added"),
    "grant-removed": (update(grant_types=("authorization_code",)), "narrows",
                      "grant refresh_token removed"),
    "scope-added": (update(scopes=("read", "write")), "widens", "scope 'write' added"),
    "scope-removed": (update(scopes=()), "narrows", "scope 'read' removed"),
    "lifetime-longer": (update(access_token_ttl=-1), "widens",
                        "access token lifetime 1h -> never"),
    "lifetime-shorter": (update(refresh_token_ttl=86400), "narrows",
                         "refresh token lifetime 30d -> 1d"),
    "lifetime-same": (update(refresh_token_ttl=30 * 86400), "neutral", ""),
    "partner-opened": (update(restrict_to_partner_users=False), "widens",
                       "restrict_to_partner_users false: any user, not only the partner's"),
    "partner-restricted": (
        update(name="Portal")._replace(fields=(FieldChange("restrict_to_partner_users", False,
                                                           True),)),
        "narrows", "restrict_to_partner_users true: only the partner's users"),
    "client-public": (method_change("client_secret_basic", "none"), "widens",
                      "made public (token_endpoint_auth_method client_secret_basic -> none): "
                      "no secret needed"),
    "client-confidential": (method_change("none", "client_secret_basic"), "narrows",
                            "token_endpoint_auth_method none -> client_secret_basic"),
    "no-access-field": (update(name="Customer portal"), "neutral",
                        ""),
}


def plan_of(*changes: Change) -> Plan:
    return Plan(
        registry="local:/srv/registry.db", changes=changes, no_op=0, unmanaged=0, managed=1,
        versions=(("acme-portal", 'W/"1"'),), commit="0" * 40, created_at="2024-05-01T12:00:00Z",
        uncommitted=(),
    )


def test_every_rule_has_a_case() -> None:
    assert sorted(CASES) == sorted(r.id for r in RULES)


@pytest.mark.parametrize("rule", sorted(CASES))
def test_each_rule_classes_its_change(rule: str) -> None:
    change, risk, reason = CASES[rule]
    assessed = change.risk
    assert assessed.risk == risk
    assert [f.rule for f in assessed.findings] == [rule]
    assert assessed.reasons == ((reason,) if risk != "neutral" else (
        assessed.findings[0].reason,
    ))


@pytest.mark.parametrize("kind", ["txt", "md", "json"])
@pytest.mark.parametrize("rule", sorted(CASES))
def test_each_rule_renders(rule: str, kind: str) -> None:
    out = io.StringIO()
    renderer = {"txt": render_plan.render_text, "md": render_plan.render_markdown,
                "json": render_plan.render_json}[kind]
    renderer(plan_of(CASES[rule][0]), out)
    path = GOLDEN / f"{rule}.{kind}"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(out.getvalue(), encoding="utf-8")
    assert out.getvalue() == path.read_text(encoding="utf-8")


def test_a_change_is_the_widest_of_its_fields() -> None:
    change = update(scopes=(), access_token_ttl=86400, name="New name")
    assessed = change.risk
    assert [f.risk for f in assessed.fields] == ["neutral", "narrows", "widens"]
    assert assessed.risk == "widens"
    assert assessed.reasons == ("access token lifetime 1h -> 1d",)
    assert assessed.tags == ("longer token lifetime",)
    assert widest([]) == "neutral"
    assert widest(["narrows", "neutral"]) == "narrows"


def test_any_scope_vocabulary_is_classed() -> None:
    field = assess_field(FieldChange("scopes", ("read",), ("billing:admin", "read")))
    assert field == FieldRisk("scopes", "widens", field.findings)
    assert field.reasons == ("scope 'billing:admin' added",)


def test_an_unknown_field_is_neutral_with_a_reason() -> None:
    field = assess_field(FieldChange("logo_uri", "a", "b"))
    assert (field.risk, field.reasons) == ("neutral", ("logo_uri decides nothing about access",))


def test_a_host_change_is_a_new_host_and_a_removal() -> None:
    assessed = update(redirect_uris=("https://portal2.acme.example/cb",)).risk
    assert [f.rule for f in assessed.findings] == ["redirect-new-host", "redirect-removed"]


def test_never_is_longer_than_any_lifetime_and_back_is_shorter() -> None:
    longer = assess("update", "x", (FieldChange("refresh_token_ttl", None, -1),))
    shorter = assess("update", "x", (FieldChange("refresh_token_ttl", -1, 86400 * 365),))
    assert (longer.risk, shorter.risk) == ("widens", "narrows")
    assert longer.reasons == ("refresh token lifetime 30d -> never",)


def test_the_summary_counts_widening_changes_by_tag() -> None:
    risks = [
        update(redirect_uris=(*URIS, "https://evil.example/cb")).risk,
        update(access_token_ttl=-1).risk,
        update(scopes=()).risk,
    ]
    assert widening_summary(risks) == (
        "2 changes widen access (1 new redirect host, 1 longer token lifetime)"
    )
    assert widening_summary(risks[:1]) == "1 change widens access (1 new redirect host)"
    assert widening_summary([ChangeRisk("neutral", ())]) == ""


def test_the_docs_show_the_code_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    table = re.search(r"<!-- BEGIN rules -->\n(.*?)<!-- END rules -->", text, re.S)
    assert table is not None, f"{DOC} has no rule table between its markers"
    assert table.group(1) == rule_table(), "regenerate the table with risk.rule_table()"
