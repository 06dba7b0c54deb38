package modgate_test

import data.modgate

test_canonical_versions if {
	every version in [
		"v0.0.0",
		"v1.2.3",
		"v1.2.3-rc.1",
		"v0.0.0-20240101000000-abcdefabcdef",
		"v1.2.4-0.20240101000000-abcdefabcdef",
		"v1.2.4-pre.0.20240101000000-abcdefabcdef",
		"v2.0.0+incompatible",
	] {
		modgate.canonical_version(version)
	}
}

test_non_canonical_versions if {
	every version in ["1.2.3", "v1.2", "v1", "master", "v01.2.3", "v1.2.3.4", "", "latest"] {
		not modgate.canonical_version(version)
	}
	not modgate.canonical_version(null)
	not modgate.canonical_version(5)
}

test_compare_versions_order if {
	modgate.compare_versions("v1.2.3", "v1.2.4") == -1
	modgate.compare_versions("v1.10.0", "v1.9.0") == 1
	modgate.compare_versions("v1.2.3", "v1.2.3") == 0
}

test_compare_versions_prereleases_sort_before_release if {
	modgate.compare_versions("v1.2.4-0.20240101000000-abcdefabcdef", "v1.2.4") == -1
	modgate.compare_versions("v1.2.4-0.20240101000000-abcdefabcdef", "v1.2.3") == 1
	modgate.compare_versions("v0.0.0-20240101000000-abcdefabcdef", "v0.0.0") == -1
}

test_compare_versions_ignores_incompatible if {
	modgate.compare_versions("v2.0.0+incompatible", "v2.0.0") == 0
	modgate.compare_versions("v2.1.0+incompatible", "v2.0.0") == 1
}

test_compare_versions_undefined_for_non_canonical if {
	not modgate.compare_versions("master", "v1.0.0")
	not modgate.compare_versions("v1.0.0", "1.0.0")
}
