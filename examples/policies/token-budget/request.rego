# Prompt size and token budget: cap the prompt by characters and by
# estimated tokens, and cap the completion the client may ask for.
package execguard.request

import rego.v1

import data.execguard.lib.openai
import data.execguard.lib.tokens

limits := object.union(data.limits, object.get(input, "params", {}))

texts := openai.message_texts(input.request.body)

prompt_chars := sum([count(t) | some t in texts])

prompt_tokens := tokens.estimate_all(texts)

# A rule, not a call in each rule below: a rule is computed once per evaluation.
completion_cap := openai.max_tokens(input.request.body)

deny contains sprintf("prompt has %d characters, limit %d", [prompt_chars, limits.max_prompt_chars]) if {
	prompt_chars > limits.max_prompt_chars
}

deny contains sprintf("prompt is about %d tokens, limit %d", [prompt_tokens, limits.max_prompt_tokens]) if {
	prompt_tokens > limits.max_prompt_tokens
}

deny contains sprintf("max_tokens %d is over the cap %d", [completion_cap, limits.max_completion_tokens]) if {
	completion_cap > limits.max_completion_tokens
}

warn contains "request does not set max_tokens" if completion_cap == 0
