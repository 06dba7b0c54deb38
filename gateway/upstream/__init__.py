"""The forward stage: upstream module proxies in ordered lists (fail-over), the path each
request is asked by, and the answer served from their reply (buffered or streamed)."""
