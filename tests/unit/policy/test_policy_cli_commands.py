"""`execguard policy test|eval` as a user runs them: exit codes, the table,
and precise messages for unusable policies and fixtures. The shipped
examples' fixtures run here on both engines, so CI keeps them honest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from execguard.cli.main import app
from execguard.devkit.binaries import BinaryNotBuilt, find_binary

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "policies"
EXAMPLE_DIRS = sorted(path for path in EXAMPLES.iterdir() if path.is_dir())

POLICY = """package execguard.request
import rego.v1
deny contains "no shouting" if upper(input.request.body.prompt) == input.request.body.prompt
"""


def invoke(*args: str, stdin: str | None = None):
    return CliRunner().invoke(app, list(args), input=stdin, env={"COLUMNS": "200"})


def write_folder(tmp_path: Path, policy: str, fixtures: str, name: str = "p_test.yaml") -> Path:
    (tmp_path / "policy.rego").write_text(policy)
    (tmp_path / name).write_text(fixtures)
    return tmp_path


def test_there_are_five_examples_with_fixtures() -> None:
    names = {path.name for path in EXAMPLE_DIRS}
    assert names == {
        "pii-guard",
        "structured-output",
        "tool-allowlist",
        "token-budget",
        "session-limit",
    }
    for folder in EXAMPLE_DIRS:
        assert list(folder.glob("*_test.*")), f"{folder.name} has no fixtures"


@pytest.mark.parametrize("folder", EXAMPLE_DIRS, ids=lambda path: path.name)
def test_example_fixtures_pass_on_the_embedded_engine(folder: Path) -> None:
    result = invoke("policy", "test", str(folder))
    assert result.exit_code == 0, result.output
    assert " 0 failed" in result.output


@pytest.mark.opa
@pytest.mark.parametrize("folder", EXAMPLE_DIRS, ids=lambda path: path.name)
def test_example_fixtures_pass_on_an_opa_server(folder: Path) -> None:
    try:
        find_binary("opa")
    except BinaryNotBuilt as error:
        pytest.skip(str(error))
    result = invoke("policy", "test", str(folder), "--engine", "opa")
    assert result.exit_code == 0, result.output
    assert " 0 failed" in result.output


def test_timing_shows_microseconds_per_fixture_and_a_dash_for_errors(tmp_path: Path) -> None:
    conflicting = POLICY + "mode := 1 if input.params.a\nmode := 2 if input.params.b\n"
    conflicting += 'deny contains "mode" if mode > 1\n'
    folder = write_folder(
        tmp_path,
        conflicting,
        "- name: shouting\n  input: {request: {body: {prompt: HI}}}\n  expect: {allowed: false}\n"
        "- name: conflict\n  input: {request: {body: {prompt: hi}}, params: {a: true, b: true}}\n"
        "  expect: {error: evaluation}\n",
    )
    result = invoke("policy", "test", str(folder), "--timing", "5")
    assert result.exit_code == 0, result.output
    assert "µs (median)" in result.output
    cells = {
        line.split("│")[2].strip(): line.split("│")[-2].strip()
        for line in result.output.splitlines()
        if line.count("│") > 6
    }
    assert cells["shouting"].isdigit()
    assert cells["conflict"] == "-"


def test_mismatch_prints_fail_row_and_exits_one(tmp_path: Path) -> None:
    folder = write_folder(
        tmp_path,
        POLICY,
        """
- name: shouting is denied
  input: {request: {body: {prompt: "HELLO"}}}
  expect: {allowed: false}
- name: wrongly expected to be allowed
  input: {request: {body: {prompt: "LOUD"}}}
  expect: {allowed: true}
""",
    )
    result = invoke("policy", "test", str(folder))
    assert result.exit_code == 1, result.output
    assert "PASS" in result.output
    assert "FAIL" in result.output
    assert "expected allowed=True, got allowed=False" in result.output
    assert "1 passed, 1 failed" in result.output


def test_jsonl_fixtures_report_their_line(tmp_path: Path) -> None:
    line = {"name": "quiet", "input": {"request": {"body": {"prompt": "hi"}}}, "expect": {}}
    folder = write_folder(
        tmp_path, POLICY, json.dumps(line) + "\n{broken\n", name="cases_test.jsonl"
    )
    result = invoke("policy", "test", str(folder))
    assert result.exit_code == 2
    assert "cases_test.jsonl:2: not valid JSON" in result.output


def test_fixture_with_unknown_key_is_refused_with_its_location(tmp_path: Path) -> None:
    folder = write_folder(tmp_path, POLICY, "- name: x\n  input: {}\n  expect: {allowd: true}\n")
    result = invoke("policy", "test", str(folder))
    assert result.exit_code == 2
    assert "p_test.yaml[0]: expect.allowd: Extra inputs are not permitted" in result.output


def test_fixture_input_that_is_not_json_is_refused(tmp_path: Path) -> None:
    # A YAML timestamp is a datetime, which no JSON document can carry.
    folder = write_folder(
        tmp_path,
        POLICY,
        "- name: x\n  input: {params: {when: 2024-01-01T00:00:00Z}}\n  expect: {}\n",
    )
    result = invoke("policy", "test", str(folder))
    assert result.exit_code == 2
    assert "p_test.yaml[0]: params.when" in result.output


def test_policy_that_does_not_compile_fails_every_fixture_with_the_line(tmp_path: Path) -> None:
    folder = write_folder(
        tmp_path,
        "package execguard.request\nimport rego.v1\ndeny contains x if {\n  x := \n}\n",
        "- name: x\n  input: {}\n  expect: {allowed: true}\n",
    )
    result = invoke("policy", "test", str(folder))
    assert result.exit_code == 1
    assert "policy.rego:4" in result.output
    assert "expected a decision, got compile" in result.output


def test_expected_compile_error_passes(tmp_path: Path) -> None:
    folder = write_folder(
        tmp_path,
        "package execguard.request\nimport rego.v1\ndeny contains",
        "- name: broken on purpose\n  input: {}\n  expect: {error: compile}\n",
    )
    result = invoke("policy", "test", str(folder))
    assert result.exit_code == 0, result.output


def test_folder_without_fixtures_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "policy.rego").write_text(POLICY)
    result = invoke("policy", "test", str(tmp_path))
    assert result.exit_code == 2
    assert "no fixture files" in result.output


def test_missing_path_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    result = invoke("policy", "test", str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert "no such file or folder" in result.output
    assert "Traceback" not in result.output


def test_eval_prints_the_decision_as_json(tmp_path: Path) -> None:
    (tmp_path / "policy.rego").write_text(POLICY)
    result = invoke(
        "policy", "eval", str(tmp_path), "-i", "-", stdin='{"request": {"body": {"prompt": "HEY"}}}'
    )
    assert result.exit_code == 0, result.output
    decision = json.loads(result.output)
    assert decision == {
        "allowed": False,
        "deny": ["no shouting"],
        "warn": [],
        "redact": [],
        "reask": None,
    }


def test_eval_refuses_an_unknown_phase(tmp_path: Path) -> None:
    (tmp_path / "policy.rego").write_text(POLICY)
    result = invoke("policy", "eval", str(tmp_path), "-i", "-", "--phase", "later", stdin="{}")
    assert result.exit_code == 2
    assert "--phase must be request, response or stream" in result.output
