# PII guard, request side: refuse prompts that carry card numbers, IBANs or
# credentials; e-mail addresses are allowed but reported.
package execguard.request

import rego.v1

import data.execguard.lib.openai
import data.execguard.lib.pii

prompt := openai.prompt_text(input.request.body)

deny contains "prompt contains a payment card number" if count(pii.card_numbers(prompt)) > 0

deny contains "prompt contains an IBAN" if count(pii.ibans(prompt)) > 0

deny contains "prompt contains a credential (API key or private key)" if count(pii.api_keys(prompt)) > 0

warn contains sprintf("prompt contains %d e-mail address(es)", [count(found)]) if {
	found := pii.emails(prompt)
	count(found) > 0
}
