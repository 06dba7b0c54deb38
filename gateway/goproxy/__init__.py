"""The Go module proxy protocol: module paths, versions, escaping and request routes."""
