# Detectors for personal data and secrets in free text.
#
#   import data.execguard.lib.pii
#   deny contains "no e-mail addresses" if count(pii.emails(text)) > 0
#
# Every detector is a function from a string to the set of matches, so a
# rule can count them, report them or redact them. Candidates are found by
# regular expression and then checked (Luhn for card numbers, ISO 13616
# mod-97 for IBANs) so that order numbers and dates do not trip them.
#
# The embedded engine loads ../native/pii.rego in place of this module: the
# same rules, with the detectors computed natively (native_pii.py). Change
# the three together; the conformance suite and a property test against OPA
# hold them to the same answers.
package execguard.lib.pii

import rego.v1

email_pattern := `[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`

# 13 to 19 digits, optionally grouped by single spaces or dashes. [0-9], not \d,
# which is ASCII in OPA but any Unicode digit in the embedded engine and in
# the sidecar's redactor.
card_pattern := `\b[0-9](?:[ -]?[0-9]){12,18}\b`

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
	digits := strings.replace_n({" ": "", "-": ""}, m)
	luhn_valid(digits)
}

# ibans(s): the IBANs in s that pass the mod-97 check, without spaces.
ibans(s) := {iban |
	some m in regex.find_n(iban_pattern, s, -1)
	iban := replace(m, " ", "")
	iban_valid(iban)
}

# One alternation of all credential shapes (in key order): one scan of the
# text, not six. Written out, not built with concat: the embedded engine
# would build it again on every evaluation. A conformance case checks that
# it matches api_key_patterns.
api_key_pattern := `(?:\b(?:AKIA|ASIA)[0-9A-Z]{16}\b)|(?:\bgh[pousr]_[A-Za-z0-9]{36,}\b)|(?:\bAIza[0-9A-Za-z_-]{35}\b)|(?:\bsk-(?:proj-)?[A-Za-z0-9_-]{20,})|(?:-----BEGIN (?:RSA |EC |OPENSSH )?PRIVATE KEY-----)|(?:\bxox[abprs]-[A-Za-z0-9-]{10,})`

# api_keys(s): the substrings of s shaped like a provider credential.
api_keys(s) := {m | some m in regex.find_n(api_key_pattern, s, -1)}

# kinds(s): which kinds of personal data or secrets s contains.
kinds(s) := {pair[0] |
	some pair in [["email", emails(s)], ["card_number", card_numbers(s)], ["iban", ibans(s)], ["api_key", api_keys(s)]]
	count(pair[1]) > 0
}

# contains_pii(s): true when s contains any of the kinds above.
contains_pii(s) if count(kinds(s)) > 0

# luhn_valid(digits): digits is 13 to 19 ASCII digits whose Luhn checksum is 0
# (mod 10).
# The digits are taken in pairs from the right (a leading "0" pads an odd
# count), and each pair is one table lookup: its first digit is the doubled
# one. Half the steps of a loop per digit, which is what costs in the
# embedded engine; the same result.
luhn_valid(digits) if {
	n := count(digits)
	n >= 13
	n <= 19
	regex.match(`^[0-9]+$`, digits)
	padded := concat("", [substring("0", 0, n % 2), digits])
	total := sum([v |
		some pair in regex.find_n(`[0-9]{2}`, padded, -1)
		v := _luhn_pair[pair]
	])
	total % 10 == 0
}

# Two digits "ab" -> Luhn contribution of a (doubled, digits summed) plus b.
_luhn_pair := {
	"00": 0, "01": 1, "02": 2, "03": 3, "04": 4, "05": 5, "06": 6, "07": 7, "08": 8, "09": 9,
	"10": 2, "11": 3, "12": 4, "13": 5, "14": 6, "15": 7, "16": 8, "17": 9, "18": 10, "19": 11,
	"20": 4, "21": 5, "22": 6, "23": 7, "24": 8, "25": 9, "26": 10, "27": 11, "28": 12, "29": 13,
	"30": 6, "31": 7, "32": 8, "33": 9, "34": 10, "35": 11, "36": 12, "37": 13, "38": 14, "39": 15,
	"40": 8, "41": 9, "42": 10, "43": 11, "44": 12, "45": 13, "46": 14, "47": 15, "48": 16, "49": 17,
	"50": 1, "51": 2, "52": 3, "53": 4, "54": 5, "55": 6, "56": 7, "57": 8, "58": 9, "59": 10,
	"60": 3, "61": 4, "62": 5, "63": 6, "64": 7, "65": 8, "66": 9, "67": 10, "68": 11, "69": 12,
	"70": 5, "71": 6, "72": 7, "73": 8, "74": 9, "75": 10, "76": 11, "77": 12, "78": 13, "79": 14,
	"80": 7, "81": 8, "82": 9, "83": 10, "84": 11, "85": 12, "86": 13, "87": 14, "88": 15, "89": 16,
	"90": 9, "91": 10, "92": 11, "93": 12, "94": 13, "95": 14, "96": 15, "97": 16, "98": 17, "99": 18,
}

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
