"""Policy folders and their recorded fixtures, for `execguard policy test|eval`.

A policy folder holds Rego modules (`*.rego`, any depth), an optional data
document (`data.json` or `data.yaml` at the top) and fixture files named
`*_test.yaml`, `*_test.yml` or `*_test.jsonl`. A fixture is one recorded
input and the decision expected for it::

    - name: e-mail address in the prompt is denied
      phase: request                      # request (default) | response | stream
      input:                              # input.* fields (request defaults to POST)
        request: {body: {messages: [{role: user, content: "mail bob@example.com"}]}}
      expect:                             # only the keys given are checked
        allowed: false
        deny: ["prompt contains an e-mail address"]

JSONL files carry one such object per line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from execguard.sidecar.policy.input import PolicyInput
from execguard.sidecar.policy.phases import Phase

FIXTURE_SUFFIXES: Final = ("_test.yaml", "_test.yml", "_test.jsonl")
DEFAULT_REQUEST: Final = {"method": "POST", "path": "/v1/chat/completions"}


class FixtureError(ValueError):
    """A policy folder or fixture file is unusable; the message names file and entry."""


class Expectation(BaseModel):
    """The decision a fixture expects; unset keys are not checked."""

    model_config = ConfigDict(extra="forbid")

    allowed: bool | None = None
    deny: list[str] | None = None
    warn: list[str] | None = None
    redact: list[str] | None = None
    reask: str | None = None
    error: Literal["compile", "evaluation"] | None = None


class Fixture(BaseModel):
    """One recorded input with its expected decision."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    phase: Phase = "request"
    input: dict[str, object] = Field(default_factory=dict)
    expect: Expectation
    source: str = ""

    def document(self) -> PolicyInput:
        """The full policy input, with the request defaults filled in."""
        fields = dict(self.input)
        request = dict(DEFAULT_REQUEST)
        given = fields.pop("request", None)
        if isinstance(given, dict):
            request.update(given)
        fields.pop("phase", None)
        fields.pop("version", None)
        return PolicyInput.model_validate({"phase": self.phase, "request": request, **fields})


@dataclass(frozen=True)
class PolicyFolder:
    """Modules, data and fixtures found under one path."""

    root: Path
    modules: dict[str, str]
    data: dict[str, object]
    fixtures: list[Fixture]


def _load_structured(path: Path) -> object:
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise FixtureError(
            f"{path}: not valid {path.suffix.lstrip('.').upper()}: {error}"
        ) from error


def _load_fixture_file(path: Path, root: Path) -> list[Fixture]:
    relative = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    raw_entries: list[tuple[str, object]] = []
    if path.name.endswith(".jsonl"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                raw_entries.append((f"{relative}:{number}", json.loads(line)))
            except json.JSONDecodeError as error:
                raise FixtureError(f"{relative}:{number}: not valid JSON: {error}") from error
    else:
        loaded = _load_structured(path)
        if not isinstance(loaded, list):
            raise FixtureError(
                f"{relative}: expected a list of fixtures, got {type(loaded).__name__}"
            )
        raw_entries = [(f"{relative}[{index}]", entry) for index, entry in enumerate(loaded)]
    fixtures: list[Fixture] = []
    for where, entry in raw_entries:
        if not isinstance(entry, dict):
            raise FixtureError(f"{where}: a fixture must be a mapping, got {type(entry).__name__}")
        try:
            fixture = Fixture.model_validate({**entry, "source": where})
            fixture.document()  # refuse an input the engines could not see, now
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
                for item in error.errors()
            )
            raise FixtureError(f"{where}: {problems}") from error
        fixtures.append(fixture)
    return fixtures


def load_policy_folder(path: Path) -> PolicyFolder:
    """Read modules, data and fixtures under `path` (a folder, or a single .rego file)."""
    if not path.exists():
        raise FixtureError(f"{path}: no such file or folder")
    root = path if path.is_dir() else path.parent
    rego_files = sorted(root.rglob("*.rego")) if path.is_dir() else [path]
    if not rego_files:
        raise FixtureError(f"{path}: no .rego modules found")
    modules = {str(file.relative_to(root)): file.read_text(encoding="utf-8") for file in rego_files}
    data: dict[str, object] = {}
    for name in ("data.json", "data.yaml", "data.yml"):
        candidate = root / name
        if candidate.is_file():
            loaded = _load_structured(candidate)
            if not isinstance(loaded, dict):
                raise FixtureError(f"{candidate}: the data document must be a mapping")
            data.update(loaded)
    fixtures: list[Fixture] = []
    if path.is_dir():
        for file in sorted(root.rglob("*")):
            if file.is_file() and file.name.endswith(FIXTURE_SUFFIXES):
                fixtures.extend(_load_fixture_file(file, root))
    return PolicyFolder(root=root, modules=modules, data=data, fixtures=fixtures)


def load_input_document(path: Path | None, text: str | None, phase: Phase) -> PolicyInput:
    """An input for `policy eval`: a JSON/YAML file (or stdin text) with input.* fields."""
    if text is None:
        if path is None:
            raise FixtureError("give an input file or '-' for standard input")
        if not path.is_file():
            raise FixtureError(f"{path}: no such input file")
        text = path.read_text(encoding="utf-8")
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise FixtureError(f"input is not valid JSON or YAML: {error}") from error
    if not isinstance(loaded, dict):
        raise FixtureError("the input must be a mapping of input.* fields")
    try:
        fixture = Fixture(name="eval", phase=phase, input=loaded, expect=Expectation())
        return fixture.document()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
            for item in error.errors()
        )
        raise FixtureError(f"input: {problems}") from error
