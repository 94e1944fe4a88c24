# Token estimates for budgets, without a tokenizer.
#
# About four characters per token is the usual rule of thumb for English
# with GPT-style tokenizers; it is an estimate for limits, not for billing.
package execguard.lib.tokens

import rego.v1

chars_per_token := 4

# estimate(s): estimated tokens in the string s (0 for the empty string).
estimate(s) := ceil(count(s) / chars_per_token)

# estimate_all(texts): estimated tokens summed over an array of strings.
estimate_all(texts) := sum([estimate(t) | some t in texts])
