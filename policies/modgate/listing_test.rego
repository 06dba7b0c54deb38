package modgate_test

import data.modgate

list_of(module, versions) := object.union(module_input("list", module, null), {"request": {"versions": versions}})

hidden(request_input) := found if {
	found := modgate.hidden_versions with input as request_input with data.modgate.config as fixture_config
}

test_blacklisted_versions_are_hidden_from_the_list if {
	hidden(list_of("example.com/insecure", ["v1.0.0", "v1.0.1", "v1.1.0"])) == ["v1.0.1"]
	hidden(list_of("example.com/leaky", ["v1.1.9", "v1.2.0", "v1.2.5", "v1.3.0"])) == ["v1.2.0", "v1.2.5"]
}

test_the_module_path_is_matched_as_the_blacklist_matches_it if {
	hidden(list_of("Example.com/Insecure", ["v1.0.1"])) == ["v1.0.1"]
}

test_other_modules_and_odd_versions_are_left_alone if {
	hidden(list_of("example.com/fine", ["v1.0.0", "v1.0.1"])) == []
	hidden(list_of("example.com/insecure", ["not-a-version", "v1.0.1"])) == ["v1.0.1"]
}

test_without_zip_in_blacklist_kinds_nothing_is_hidden if {
	config := object.union(fixture_config, {"blacklist_kinds": ["info", "latest"]})
	found := modgate.hidden_versions with input as list_of("example.com/insecure", ["v1.0.1"])
		with data.modgate.config as config
	found == []
}

test_malformed_data_hides_everything if {
	config := object.union(fixture_config, {"blacklist": "oops"})
	found := modgate.hidden_versions with input as list_of("example.com/fine", ["v1.0.0", "v1.1.0"])
		with data.modgate.config as config
	found == ["v1.0.0", "v1.1.0"]
}

test_no_versions_no_answer_but_an_empty_one if {
	hidden(module_input("list", "example.com/insecure", null)) == []
}
