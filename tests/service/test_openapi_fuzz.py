"""A bounded schemathesis run over the OpenAPI document: no request, however malformed, gets
a server error, and every response conforms to the document."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from service_helpers import AUTH, TOKEN, http_config

from nasprune.service.app import create_app
from nasprune.service.settings import ServiceSettings


def test_no_request_gets_a_server_error(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    app = create_app(
        ServiceSettings(
            storage=f"sqlite:///{tmp_path / 'store.db'}",
            token=TOKEN,
            export_dir=tmp_path / "exports",
            poll_s=0.01,
        )  # fmt: skip
    )
    TestClient(app).post("/searches", json=http_config(tmp_path), headers=AUTH)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    schema = schema.exclude(path_regex=".*/events$")  # a live search's stream never ends
    checks = [not_a_server_error, response_schema_conformance]
    tried = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=AUTH, checks=checks)

        check()
        tried += 1
    app.state.store.close()
    assert tried >= 12
