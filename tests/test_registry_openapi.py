"""The OpenAPI contract against the running reference server (schemathesis).

Every operation of ``schemas/registry-api.openapi.yaml`` gets schema-valid and
schema-invalid requests; the server must answer as documented: no 5xx, only
documented status codes, headers and bodies matching the schema, invalid input
refused with a 4xx, 405 with ``Allow`` for undocumented methods, 401 without auth.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from support.registry import ROOT, RegistryServer, launch_registry_server

SPEC = ROOT / "schemas" / "registry-api.openapi.yaml"
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "ignored_auth",
]
"""``positive_data_acceptance`` is left out on purpose: schema-valid bodies may still
break a registry rule no schema can state (a client ID must start with its partner's
subdomain), and 400 is the documented answer."""


@pytest.fixture(scope="module")
def openapi_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A server of its own: the generated requests create and delete at random."""
    server = launch_registry_server(tmp_path_factory.mktemp("openapi"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api_schema(openapi_server: RegistryServer) -> Any:
    """The contract, pointed at ``openapi_server`` with credentials for both schemes."""
    config = schemathesis.Config.from_dict(
        {
            "base-url": openapi_server.base_url[: -len("/v1")],
            "seed": 20240501,
            "generation": {"mode": "all", "max-examples": 25},
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": True},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "auth": {
                "openapi": {
                    "bearerAuth": {"bearer": openapi_server.token()},
                    "clientBasic": {
                        "username": openapi_server.ci[0],
                        "password": openapi_server.ci[1],
                    },
                }
            },
        }
    )
    return schemathesis.openapi.from_path(SPEC, config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_server_honours_the_contract(case: Any) -> None:
    case.call_and_validate()


def test_the_contract_file_is_the_packaged_one() -> None:
    packaged = Path(__file__).parent.parent / "oauth2_sync" / "schemas" / SPEC.name
    assert SPEC.read_bytes() == packaged.read_bytes()


def test_the_adapter_pages_with_the_largest_page_the_contract_allows() -> None:
    """The HTTP adapter's default page is the contract's ``pageSize`` maximum, and so is
    the settings' default."""
    import yaml

    from oauth2_sync.registry.http import MAX_PAGE_SIZE, HttpRegistry
    from oauth2_sync.registry.tokens import Credentials
    from oauth2_sync.secret import Secret
    from oauth2_sync.settings import RegistrySettings

    spec = yaml.safe_load((ROOT / "oauth2_sync/schemas/registry-api.openapi.yaml").read_text())
    parameters = spec["paths"]["/v1/oauth2-clients"]["get"]["parameters"]
    largest = next(p for p in parameters if p["name"] == "pageSize")["schema"]["maximum"]
    assert (MAX_PAGE_SIZE, RegistrySettings("local:x").page_size) == (largest, largest)
    # Made, not introspected: nothing is sent before the first call.
    made = HttpRegistry("http://127.0.0.1:9/v1", Credentials("id", Secret("secret")))
    with made:
        assert made.page_size == largest
