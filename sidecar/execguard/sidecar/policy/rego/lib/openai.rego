# Accessors for OpenAI-style chat/completions bodies, so rules stay short
# and do not repeat the shape checks.
#
#   import data.execguard.lib.openai
#   deny contains "model not allowed" if not openai.model(input.request.body) in {"gpt-4o-mini"}
package execguard.lib.openai

import rego.v1

# model(body): the requested (or answering) model name, "" when absent.
model(body) := m if {
	m := body.model
	is_string(m)
} else := ""

# messages(body): the chat messages of a request body, [] when absent.
# One rule with `else`, not one rule per case: the embedded engine evaluates
# every definition of a function on each call, `else` stops at the first.
messages(body) := body.messages if {
	is_array(body.messages)
} else := []

# content_text(content): text of a message content, either a string or an
# array of parts ({"type": "text", "text": ...}); other parts are skipped.
content_text(content) := content if {
	is_string(content)
} else := concat("\n", [part.text |
	some part in content
	is_string(part.text)
]) if {
	is_array(content)
} else := ""

# message_texts(body): the text of every message, in order.
message_texts(body) := [content_text(object.get(m, "content", "")) | some m in messages(body)]

# prompt_text(body): all message texts joined by newlines.
prompt_text(body) := concat("\n", message_texts(body))

# roles(body): the set of roles present in the messages.
roles(body) := {m.role | some m in messages(body); is_string(m.role)}

# declared_tools(body): names of the functions a request offers the model.
declared_tools(body) := {t.function.name |
	some t in object.get(body, "tools", [])
	is_string(t.function.name)
}

# tool_calls(body): names of the functions the model asks to call in a
# response (every choice), plus tool results sent back in a request.
tool_calls(body) := {c.function.name |
	some choice in object.get(body, "choices", [])
	some c in object.get(object.get(choice, "message", {}), "tool_calls", [])
	is_string(c.function.name)
} | {c.function.name |
	some m in messages(body)
	some c in object.get(m, "tool_calls", [])
	is_string(c.function.name)
}

# response_text(body): the assistant text of every choice, joined by newlines.
response_text(body) := concat("\n", [content_text(choice.message.content) |
	some choice in object.get(body, "choices", [])
	choice.message.content != null
])

# max_tokens(body): the requested completion cap, 0 when absent.
max_tokens(body) := n if {
	n := object.get(body, "max_completion_tokens", object.get(body, "max_tokens", 0))
	is_number(n)
} else := 0
