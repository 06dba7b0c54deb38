"""Shared aliases, free of logic, so signatures read as the protocol does."""

from typing import Literal

ModulePath = str
"""A module path as the go command writes it in go.mod (unescaped, may hold uppercase)."""

Version = str
"""A canonical semantic version (``v1.2.3``, a pseudo-version, ``+incompatible``)."""

RequestKind = Literal["list", "info", "mod", "zip", "latest", "sumdb"]
"""What a request asks for; the policy input carries it under ``request.kind``."""

Route = Literal["public", "private"]
"""Which upstream list serves a module; the policy decides, the gateway enforces."""
