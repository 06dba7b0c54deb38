"""Forwarding to upstream module proxies: ordered lists, fail-over, streaming."""
