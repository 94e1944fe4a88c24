# data.execguard.lib.pii for the embedded engine: the rules of ../lib/pii.rego
# (read that file for what each one means) with the detectors computed by the
# worker's native functions (execguard/sidecar/policy/native_pii.py), because
# the same steps in Rego are most of what a PII policy costs. Loaded under
# the library's module name in place of ../lib/pii.rego; the rego-cpp
# fallback and OPA load the Rego original. Keep the two in step.
package execguard.lib.pii

import rego.v1

email_pattern := `[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`

card_pattern := `\b[0-9](?:[ -]?[0-9]){12,18}\b`

iban_pattern := `\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\b`

api_key_patterns := {
	"openai": `\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}`,
	"aws_access_key_id": `\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`,
	"github_token": `\bgh[pousr]_[A-Za-z0-9]{36,}\b`,
	"slack_token": `\bxox[abprs]-[A-Za-z0-9-]{10,}`,
	"google_api_key": `\bAIza[0-9A-Za-z_-]{35}\b`,
	"private_key": `-----BEGIN (?:RSA |EC |OPENSSH )?PRIVATE KEY-----`,
}

api_key_pattern := `(?:\b(?:AKIA|ASIA)[0-9A-Z]{16}\b)|(?:\bgh[pousr]_[A-Za-z0-9]{36,}\b)|(?:\bAIza[0-9A-Za-z_-]{35}\b)|(?:\bsk-(?:proj-)?[A-Za-z0-9_-]{20,})|(?:-----BEGIN (?:RSA |EC |OPENSSH )?PRIVATE KEY-----)|(?:\bxox[abprs]-[A-Za-z0-9-]{10,})`

emails(s) := execguard.native.pii_emails(s)

card_numbers(s) := execguard.native.pii_card_numbers(s)

ibans(s) := execguard.native.pii_ibans(s)

api_keys(s) := execguard.native.pii_api_keys(s)

kinds(s) := {pair[0] |
	some pair in [["email", emails(s)], ["card_number", card_numbers(s)], ["iban", ibans(s)], ["api_key", api_keys(s)]]
	count(pair[1]) > 0
}

contains_pii(s) if count(kinds(s)) > 0

# Undefined, not false, when the check fails: as the Rego original.
luhn_valid(digits) if execguard.native.pii_luhn_valid(digits)

iban_valid(iban) if execguard.native.pii_iban_valid(iban)
