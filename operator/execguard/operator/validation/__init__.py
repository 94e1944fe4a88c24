"""Checks on a policy spec that the CRD schema cannot express.

The apiserver has already enforced types, bounds, enums and CEL rules; what is
left needs real compilers: Rego modules must compile (reported with module and
line), embedded JSON Schemas must be valid schemas, regular expressions must
compile. An object failing these is accepted by the apiserver and reported as
`Invalid` in its status; its previous valid generation stays in effect.
"""
