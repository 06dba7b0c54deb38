package modgate

# The checksum database. A lookup names a module and version; for a private
# module that lookup would disclose the private path to a public checksum
# database, and the lookup could never succeed anyway, so it is denied with a
# hint telling the developer how to configure the go command. "supported" and
# "tile" requests name no module and need only an authenticated identity.
#
# The blacklist does not apply here: a lookup only reveals checksums.

sumdb_denied if {
	input.request.kind == "sumdb"
	input.request.sumdb.kind == "lookup"
	private_module
}

sumdb_denials contains msg if {
	sumdb_denied
	msg := sprintf(
		"%s is private: its checksum is never looked up in a public checksum database; add its path to GONOSUMDB",
		[input.request.module],
	)
}
