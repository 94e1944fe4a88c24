# Structured-output contract: the model must answer with a JSON document
# that satisfies the JSON Schema in data.contract. On failure, ask again
# with a hint (the sidecar's onFailure: reask uses `reask`).
package execguard.response

import rego.v1

import data.execguard.lib.openai
import data.execguard.lib.schema

answer_text := openai.response_text(input.response.body)

# Guarded by json.is_valid: OPA would make a failing json.unmarshal
# undefined anyway, but the embedded engine treats it as an error and has to
# ask its slower fallback engine, so a prose answer is checked first.
answer := json.unmarshal(answer_text) if answer_is_json

deny contains "the answer is not JSON" if not answer_is_json

deny contains msg if {
	answer_is_json
	some msg in schema.violations(answer, data.contract)
}

answer_is_json if json.is_valid(answer_text)

reask := "Reply with one JSON object only, matching the contract: fields sentiment (positive|neutral|negative) and confidence (0..1)." if count(deny) > 0
