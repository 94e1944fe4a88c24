# Tool allow-list for agents: a request may only offer the model tools that
# the workload's namespace allows (data.allowed_tools, with a default list).
package execguard.request

import rego.v1

import data.execguard.lib.openai

allowed_tools := object.get(data.allowed_tools, input.workload.namespace, data.allowed_tools["*"])

deny contains sprintf("tool %s is not allowed in namespace %s", [tool, input.workload.namespace]) if {
	some tool in openai.declared_tools(input.request.body)
	not tool in allowed_tools
}

# Tool results sent back must come from tools the model was allowed to call.
deny contains sprintf("tool result from %s, which is not allowed", [tool]) if {
	some tool in openai.tool_calls(input.request.body)
	not tool in allowed_tools
}
