"""For any request body, the sidecar answers with a well-formed HTTP response and never
a 500 of its own."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings, strategies as st
from sidecar_processes import CARD_RULE, EMAIL_RULE, ModelServer, Sidecar, base_config

RULE = """package execguard.request

deny contains "too many messages" if count(input.request.body.messages) > 3
"""

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
chat_like = st.fixed_dictionaries(
    {"model": st.sampled_from(["scripted-1", "other", 3])},
    optional={
        "messages": st.lists(
            st.fixed_dictionaries({"role": st.text(max_size=5), "content": json_values}),
            max_size=5,
        ),
        "stream": st.booleans(),
        "max_tokens": json_values,
        "tools": json_values,
    },
).map(lambda d: json.dumps(d).encode())
bodies = st.one_of(
    st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode()), chat_like
)
content_types = st.sampled_from(["application/json", "text/plain", "", "application/x+json"])
# Statuses only the sidecar produces here (the scripted model answers 200, 400, 404 or 405).
SIDECAR_STATUSES = frozenset({403, 413, 415, 429, 502, 503, 504})
paths = st.sampled_from(["/v1/chat/completions", "/v1/completions", "/v1/json", "/v1/models"])


def test_any_body_gets_a_well_formed_answer_and_never_a_sidecar_500(
    model_server: ModelServer, spawn: Callable[..., Sidecar]
) -> None:
    sidecar = spawn(
        base_config(
            model_server.port,
            boundaries={"maxRequestBytes": 200, "tokens": {"maxTokens": 50, "mode": "clamp"}},
            validation={
                "request": {"rego": {"r.rego": RULE}},
                "response": {"redaction": [EMAIL_RULE, CARD_RULE]},
            },
        )
    )

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(body=bodies, content_type=content_types, path=paths)
    def check(body: bytes, content_type: str, path: str) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", sidecar.port, timeout=30)
        headers = {"Content-Type": content_type} if content_type else {}
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        assert 200 <= response.status < 600
        assert response.status != 500, payload
        if response.status in SIDECAR_STATUSES or (
            response.status == 400
            and (response.getheader("Content-Type", "").startswith("application/json"))
        ):
            # the sidecar's own refusals always carry a JSON error object
            assert "error" in json.loads(payload)

    check()
