# Detectors for personal data and secrets in free text.
#
#   import data.execguard.lib.pii
#   deny contains "no e-mail addresses" if count(pii.emails(text)) > 0
#
# Every detector is a function from a string to the set of matches, so a
# rule can count them, report them or redact them. Candidates are found by
# regular expression and then checked (Luhn for card numbers, ISO 13616
# mod-97 for IBANs) so that order numbers and dates do not trip them.
package execguard.lib.pii

import rego.v1

email_pattern := `[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`

# 13 to 19 digits, optionally grouped by single spaces or dashes.
card_pattern := `\b\d(?:[ -]?\d){12,18}\b`

iban_pattern := `\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\b`

# Shapes of common provider credentials; kind -> pattern.
api_key_patterns := {
	"openai": `\bsk-(?:proj-)?[A-Za-z0-9_-]{20,}`,
	"aws_access_key_id": `\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`,
	"github_token": `\bgh[pousr]_[A-Za-z0-9]{36,}\b`,
	"slack_token": `\bxox[abprs]-[A-Za-z0-9-]{10,}`,
	"google_api_key": `\bAIza[0-9A-Za-z_-]{35}\b`,
	"private_key": `-----BEGIN (?:RSA |EC |OPENSSH )?PRIVATE KEY-----`,
}

# emails(s): the e-mail addresses in s.
emails(s) := {m | some m in regex.find_n(email_pattern, s, -1)}

# card_numbers(s): the Luhn-valid payment card numbers in s, digits only.
card_numbers(s) := {digits |
	some m in regex.find_n(card_pattern, s, -1)
	digits := regex.replace(m, `[ -]`, "")
	luhn_valid(digits)
}

# ibans(s): the IBANs in s that pass the mod-97 check, without spaces.
ibans(s) := {iban |
	some m in regex.find_n(iban_pattern, s, -1)
	iban := replace(m, " ", "")
	iban_valid(iban)
}

# One alternation of all credential shapes: one scan of the text, not six.
api_key_pattern := concat("|", [concat("", ["(?:", p, ")"]) | some p in api_key_patterns])

# api_keys(s): the substrings of s shaped like a provider credential.
api_keys(s) := {m | some m in regex.find_n(api_key_pattern, s, -1)}

# kinds(s): which kinds of personal data or secrets s contains.
kinds(s) := {pair[0] |
	some pair in [["email", emails(s)], ["card_number", card_numbers(s)], ["iban", ibans(s)], ["api_key", api_keys(s)]]
	count(pair[1]) > 0
}

# contains_pii(s): true when s contains any of the kinds above.
contains_pii(s) if count(kinds(s)) > 0

# luhn_valid(digits): the Luhn checksum of a digit string is 0 (mod 10).
# Table lookups instead of arithmetic per digit: noticeably cheaper in the
# embedded engine, and the same result.
luhn_valid(digits) if {
	n := count(digits)
	n >= 13
	n <= 19
	chars := split(digits, "")
	total := sum([v |
		some i
		c := chars[i]
		# Bound to a variable first: rego-cpp 1.x fails on arithmetic inside a ref.
		parity := ((n - 1) - i) % 2
		v := _luhn_table[parity][c]
	])
	total % 10 == 0
}

# Digit character -> its Luhn contribution at an even / odd position from the right.
_luhn_table := [
	{"0": 0, "1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "6": 6, "7": 7, "8": 8, "9": 9},
	{"0": 0, "1": 2, "2": 4, "3": 6, "4": 8, "5": 1, "6": 3, "7": 5, "8": 7, "9": 9},
]

# Letter -> its IBAN value, for one strings.replace_n over the whole text.
_letter_values := {
	"A": "10", "B": "11", "C": "12", "D": "13", "E": "14", "F": "15", "G": "16",
	"H": "17", "I": "18", "J": "19", "K": "20", "L": "21", "M": "22", "N": "23",
	"O": "24", "P": "25", "Q": "26", "R": "27", "S": "28", "T": "29", "U": "30",
	"V": "31", "W": "32", "X": "33", "Y": "34", "Z": "35",
}

# 10^(7k) mod 97 for k = 0..9: the weight of the k-th 7-digit chunk from the
# right. Ten chunks cover the longest IBAN (34 characters, 64 digits).
_pow10_7k_mod97 := [1, 76, 53, 51, 93, 84, 79, 87, 16, 52]

# iban_valid(iban): ISO 13616 check (country code and check digits moved to
# the end, letters as 10..35, the whole number mod 97 equals 1). The number
# is summed in 7-digit chunks, each weighted by its power of ten mod 97, so
# no term is wider than a float holds exactly and the loop is ~5 steps, not
# one per digit (the per-step cost dominates in the embedded engine).
iban_valid(iban) if {
	n := count(iban)
	n >= 15
	n <= 34
	rearranged := concat("", [substring(iban, 4, n - 4), substring(iban, 0, 4)])
	numeric := strings.replace_n(_letter_values, rearranged)
	regex.match(`^[0-9]+$`, numeric)
	pad := (7 - (count(numeric) % 7)) % 7
	padded := concat("", [substring("000000", 0, pad), numeric])
	chunks := count(padded) / 7
	chunks <= count(_pow10_7k_mod97)
	remainder := sum([term |
		some j in numbers.range(0, chunks - 1)
		# A leading "1" keeps leading zeros out of to_number, which refuses them.
		chunk := to_number(concat("", ["1", substring(padded, 7 * j, 7)])) - 10000000
		weight := (chunks - 1) - j
		term := chunk * _pow10_7k_mod97[weight]
	]) % 97
	remainder == 1
}
