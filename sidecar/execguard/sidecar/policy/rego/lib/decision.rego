# The decision of each phase, as the sidecar reads it: the four decision
# rules of data.execguard.<phase> and nothing else.
#
# Both engines evaluate data.execguard.lib.decision.<phase> rather than the
# whole package, so helper rules are computed only as far as a decision rule
# needs them (a helper nobody uses cannot fail a request), the answer carries
# no helper values, and one evaluation shares helper results between rules.
#
# Each rule is wrapped in an array: [] when it is undefined (a policy without
# `reask`, or without a package for this phase), [value] otherwise, so that an
# undefined rule does not make the whole decision undefined.
package execguard.lib.decision

import rego.v1

request := {
	"deny": [x | x := data.execguard.request.deny],
	"warn": [x | x := data.execguard.request.warn],
	"redact": [x | x := data.execguard.request.redact],
	"reask": [x | x := data.execguard.request.reask],
}

response := {
	"deny": [x | x := data.execguard.response.deny],
	"warn": [x | x := data.execguard.response.warn],
	"redact": [x | x := data.execguard.response.redact],
	"reask": [x | x := data.execguard.response.reask],
}

stream := {
	"deny": [x | x := data.execguard.stream.deny],
	"warn": [x | x := data.execguard.stream.warn],
	"redact": [x | x := data.execguard.stream.redact],
	"reask": [x | x := data.execguard.stream.reask],
}
