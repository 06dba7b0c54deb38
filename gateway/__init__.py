"""modgate: a security gateway for the Go module proxy protocol."""

__version__ = "0.1.0"
