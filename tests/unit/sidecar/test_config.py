"""The sidecar config document: what the operator renders and the sidecar accepts."""

from __future__ import annotations

import json

import pytest

from execguard.sidecar.config import (
    ConfigError,
    EnforcementAction,
    SidecarConfig,
    UpstreamProtocol,
    parse_config,
)


def test_an_empty_document_gives_working_defaults() -> None:
    config = parse_config("{}")
    assert config.upstream.protocol is UpstreamProtocol.OPENAI
    assert config.enforcement_action is EnforcementAction.ENFORCE
    assert config.admin.port != config.listen.port


def test_rendered_document_uses_camel_case_and_round_trips() -> None:
    config = SidecarConfig.model_validate(
        {
            "generation": 3,
            "failurePolicy": "open",
            "boundaries": {"maxRequestBytes": 10, "tokens": {"maxTokens": 5, "mode": "clamp"}},
            "validation": {"response": {"onFailure": "reask", "maxReasks": 2}},
        }
    )
    rendered = json.loads(config.model_dump_json(by_alias=True))
    assert rendered["failurePolicy"] == "open"
    assert rendered["boundaries"]["maxRequestBytes"] == 10
    assert parse_config(json.dumps(rendered)) == config


def test_unknown_key_is_refused_with_its_location() -> None:
    with pytest.raises(ConfigError, match=r"boundaries\.maxRequestByte: Extra inputs"):
        parse_config('{"boundaries": {"maxRequestByte": 1}}')


def test_redaction_pattern_that_does_not_compile_is_refused() -> None:
    document = {"validation": {"response": {"redaction": [{"name": "x", "pattern": "(["}]}}}
    with pytest.raises(ConfigError, match="pattern does not compile"):
        parse_config(json.dumps(document))


def test_same_port_for_admin_and_proxy_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"admin\.port must differ"):
        parse_config('{"listen": {"port": 9000}, "admin": {"port": 9000}}')


def test_header_rate_limit_key_needs_a_header_name() -> None:
    document = {"boundaries": {"rateLimit": {"requestsPerSecond": 1, "key": {"kind": "header"}}}}
    with pytest.raises(ConfigError, match="needs 'header'"):
        parse_config(json.dumps(document))


def test_module_names_must_not_collide_between_request_and_response() -> None:
    document = {
        "validation": {
            "request": {"rego": {"a.rego": "package execguard.request"}},
            "response": {"rego": {"a.rego": "package execguard.response"}},
        }
    }
    with pytest.raises(ConfigError, match="unique"):
        parse_config(json.dumps(document))


def test_malformed_json_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="invalid sidecar config"):
        parse_config("{not json")
