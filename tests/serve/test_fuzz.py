"""Schemathesis fuzzes every API operation from the OpenAPI schema: bad input is never a 500.

It sends the admin key, so the protected routes are fuzzed past their auth checks too.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from serving import api_client, auth_headers

from moodboard.ingest import Workspace


@pytest.fixture(scope="module")
def api_schema(served_ws: Workspace) -> Iterator[schemathesis.BaseSchema]:
    with api_client(served_ws.root) as client:
        yield schemathesis.openapi.from_asgi("/openapi.json", client.app)


#: Operations and the examples each gets (uploads embed an image: fewer).
EXAMPLES = 25


def test_no_input_makes_a_server_error(api_schema: schemathesis.BaseSchema) -> None:
    seen = []
    for result in api_schema.get_all_operations():
        op = result.ok()
        seen.append(f"{op.method.upper()} {op.path}")

        @given(case=op.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: schemathesis.Case) -> None:
            response = case.call(headers=auth_headers("admin"))
            assert response.status_code < 500, (case.method, case.path, response.text[:300])
            if response.status_code >= 400 and "json" in response.headers.get("content-type", ""):
                assert response.json().get("detail"), response.text[:300]

        check()
    assert {"GET /search", "POST /events", "POST /visual-search", "GET /related/{item_id}"} <= set(
        seen
    )
