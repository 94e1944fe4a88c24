"""The custom resources' API (group `execguard.io`, version `v1alpha1`) as pydantic models.

These models are the single source of truth: `execguard.operator.api.crds` renders
the CustomResourceDefinitions in `crds/` from them (descriptions, defaults, bounds,
enums and CEL rules included), and a test fails when the committed YAML is stale.
The operator parses what the apiserver stored with the same models.
"""
