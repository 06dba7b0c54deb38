"""GET /-/client-settings: what `modgate client setup` needs to configure a developer's go
command, for any authenticated caller.

    {"goproxy": "https://modgate.corp.example:8443",
     "subject": "alice",                 the caller, the .netrc login an API token needs
     "private_patterns": ["corp.example.com/*"]}    for GONOSUMDB, from the policy data

The patterns are the policy's own (``client_settings`` beside the decision document,
policies/modgate/private.rego), so the developer's GONOSUMDB follows what compliance
marks private. A path under ``/-/`` can never be a module path (its first element would
have to be a host name), so this endpoint cannot shadow a proxy request. Like /readyz it
is not a proxy request and gets no audit record: it serves no module.
"""

import json
import logging
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from .errors import GatewayError, PolicyError
from .responses import text_response

if TYPE_CHECKING:  # app.py wires this endpoint: no import cycle at run time
    from .app import Gateway

log = logging.getLogger(__name__)

PATH = "/-/client-settings"


def _patterns(document: object) -> list[str]:
    patterns = document.get("private_patterns") if isinstance(document, dict) else None
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise PolicyError('the policy\'s client_settings is not {"private_patterns": [...]}')
    return patterns


async def client_settings(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    try:
        identity = await gw.identity.identify(gw.identity.proof(request))
    except GatewayError as exc:
        return text_response(exc.status, [exc.reason], "-", challenge=exc.status == 401)
    if not identity.authenticated:
        reason = "authentication required: send a token (Authorization: Bearer)"
        return text_response(401, [reason], "-", challenge=True)
    package = gw.settings.policy.decision_path.strip("/").rpartition("/")[0]
    try:
        patterns = _patterns(await gw.policy.document(f"{package}/client_settings"))
    except GatewayError as exc:
        log.warning("client settings refused: %s", exc.reason)
        return text_response(503, [f"client settings unavailable: {exc.reason}"], "-")
    body = {
        "goproxy": f"{request.url.scheme}://{request.url.netloc}",
        "subject": identity.subject,
        "private_patterns": patterns,
    }
    return Response(json.dumps(body, indent=1) + "\n", media_type="application/json")
