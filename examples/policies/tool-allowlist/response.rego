# The model may only call allowed tools, and never more than data.max_tool_calls at once.
package execguard.response

import rego.v1

import data.execguard.lib.openai

allowed_tools := object.get(data.allowed_tools, input.workload.namespace, data.allowed_tools["*"])

calls := openai.tool_calls(input.response.body)

deny contains sprintf("model called %s, which is not allowed", [tool]) if {
	some tool in calls
	not tool in allowed_tools
}

deny contains sprintf("model asked for %d tool calls, limit %d", [count(calls), data.max_tool_calls]) if {
	count(calls) > data.max_tool_calls
}
