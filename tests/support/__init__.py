"""Test-support helpers: real Go modules, a fake upstream proxy, PostgreSQL and OPA."""
