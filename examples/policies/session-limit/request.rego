# Session step limit for multi-step agents: stop a session after
# max_steps requests or max_tokens tokens, warn near the end, and ask the
# model to wrap up on the last step.
package execguard.request

import rego.v1

limits := object.union(data.session_limits, object.get(input, "params", {}))

deny contains "requests to this model must carry a session id" if {
	limits.require_session
	input.session.id == null
}

deny contains sprintf("session %s used its %d steps", [input.session.id, limits.max_steps]) if {
	input.session.steps >= limits.max_steps
}

deny contains sprintf("session %s used %d of %d tokens", [input.session.id, input.session.tokens, limits.max_tokens]) if {
	input.session.tokens >= limits.max_tokens
}

warn contains sprintf("session %s is on step %d of %d", [input.session.id, input.session.steps + 1, limits.max_steps]) if {
	input.session.steps + 1 >= limits.max_steps - 1
	input.session.steps < limits.max_steps
}

reask := "This is the last step of the session: give your final answer now." if {
	input.session.steps + 1 == limits.max_steps
}
