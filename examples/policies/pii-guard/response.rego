# PII guard, response side: never return credentials; redact e-mail
# addresses and card numbers from what the model says.
package execguard.response

import rego.v1

import data.execguard.lib.openai
import data.execguard.lib.pii

answer := openai.response_text(input.response.body)

deny contains "response contains a credential" if count(pii.api_keys(answer)) > 0

redact contains pii.email_pattern if count(pii.emails(answer)) > 0

redact contains pii.card_pattern if count(pii.card_numbers(answer)) > 0
