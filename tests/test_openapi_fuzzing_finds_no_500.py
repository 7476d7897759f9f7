"""Schemathesis against the app's own OpenAPI document, over real HTTP (uvicorn), as a customer and
as an administrator: valid and invalid input for every documented operation, and no answer may be
a 5xx, undocumented, or different from its documented schema.

`make test` runs a bounded number of examples per operation (FUZZ_EXAMPLES, default 5); `make soak`
runs many more, and the coverage phase's boundary values of every field (FUZZ_PHASES)."""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support import LiveServer

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "5"))
# The coverage phase (boundary values of every field: about 1,800 requests per role) only in soak.
PHASES = os.environ.get("FUZZ_PHASES", "examples,fuzzing").split(",")
CHECKS = [checks.not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def load_schema() -> Any:
    from web.app import app

    loaded = schemathesis.openapi.from_dict(app.state.openapi)  # what /api/openapi.json serves
    loaded.config.generation.update(max_examples=EXAMPLES)
    loaded.config.phases.update(phases=PHASES)
    return loaded


schema = load_schema()


# The role's user and the seeded rows are made once per operation and shared by its examples.
SHARED_FIXTURES = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


@schema.parametrize()
@SHARED_FIXTURES
def test_as_a_customer(case: Any, user_headers: dict[str, str], live_server: LiveServer) -> None:
    case.call_and_validate(base_url=live_server.url, headers=user_headers, checks=CHECKS)


@schema.parametrize()
@SHARED_FIXTURES
def test_as_an_admin(case: Any, admin_headers: dict[str, str], live_server: LiveServer) -> None:
    case.call_and_validate(base_url=live_server.url, headers=admin_headers, checks=CHECKS)
