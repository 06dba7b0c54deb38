"""Policy: build the documented input, ask OPA, turn its answer into a Decision."""
