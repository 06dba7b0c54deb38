package modgate_test

import data.modgate

# Blacklist entries with an author and an expiry date (the last day they apply).
# The fixture inputs are at 2026-11-25T19:00:00Z.

expiring(date) := object.union(fixture_config, {"blacklist": [{
	"module": "example.com/insecure",
	"versions": ["v1.0.1"],
	"reason": "CVE-2024-1234: remote code execution",
	"ticket": "SEC-42",
	"author": "compliance@corp.example",
	"expires": date,
}]})

decided_under(config, request_input) := result if {
	result := modgate.decision with input as request_input with data.modgate.config as config
}

blocked_zip := module_input("zip", "example.com/insecure", "v1.0.1")

test_an_entry_applies_through_its_expiry_day if {
	not decided_under(expiring("2026-11-25"), blocked_zip).allow # its last day
	not decided_under(expiring("2027-01-31"), blocked_zip).allow
}

test_an_entry_stops_applying_after_its_expiry_day if {
	decided_under(expiring("2026-11-24"), blocked_zip).allow
	found := modgate.hidden_versions with input as list_of("example.com/insecure", ["v1.0.0", "v1.0.1"])
		with data.modgate.config as expiring("2026-11-24")
	found == []
}

test_without_a_clock_in_the_input_an_expiring_entry_applies if {
	timeless := json.remove(blocked_zip, ["time"])
	not modgate._in_force({"expires": "2026-11-24"}) with input as timeless
	modgate._in_force({"expires": "2026-11-24"}) with input as object.union(timeless, {"time": {"unix_ns": "soon"}})
}

test_a_malformed_expiry_or_author_is_refused_naming_the_fix if {
	every bad in ["2026-13-01", "tomorrow", "2026-11-25T00:00:00Z", 20261125] {
		config := expiring(bad)
		not decided_under(config, blocked_zip).allow
		"malformed policy data: blacklist[0] (example.com/insecure): expires must be a date such as 2027-01-31" in data_errors_with(config)
	}
	config := object.union(fixture_config, {"blacklist": [{"module": "example.com/insecure", "versions": ["v1.0.1"], "reason": "r", "author": 7}]})
	"malformed policy data: blacklist[0] (example.com/insecure): author must be a string" in data_errors_with(config)
}

test_an_expired_entry_is_a_warning_and_denies_nothing if {
	config := expiring("2026-11-24")
	warnings := modgate.data_warnings with data.modgate.config as config
		with time.now_ns as 1795633200000000000 # 2026-11-25T19:00:00Z
	warnings == {"policy data: blacklist[0] (example.com/insecure): expired on 2026-11-24 and no longer applies; remove it, or extend expires"}
	data_errors_with(config) == set()
	modgate.config_ok with data.modgate.config as config
	still := modgate.data_warnings with data.modgate.config as expiring("2026-11-25")
		with time.now_ns as 1795633200000000000
	still == set()
}

test_a_decision_an_expiring_entry_names_is_not_to_be_reused if {
	decided_under(expiring("2027-01-31"), blocked_zip).obligations.cache_ttl_s == 0
	other_spelling := module_input("zip", "example.com/Insecure", "v1.0.0")
	decided_under(expiring("2027-01-31"), other_spelling).obligations.cache_ttl_s == 0
	unrelated := module_input("zip", "example.com/fine", "v1.0.0")
	decided_under(expiring("2027-01-31"), unrelated).obligations.cache_ttl_s == 60
}
