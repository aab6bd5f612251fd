"""HTTP surface served next to the Streamlit UI: `/api/*` (health, identity) and the OpenAI-compatible `/v1`.

Starlette routes only; they authenticate with per-workspace API keys or OIDC ID tokens and call core
services, so any OpenAI SDK can use Keel as its LLM endpoint.
"""

from core.api._complete import register_cookie_authenticator
from core.api._ops import routes as _ops_routes
from core.api._routes import routes as _routes

routes = [*_routes, *_ops_routes]  # jobs, search sync, eval runs and the support chat/console as JSON

__all__ = ["register_cookie_authenticator", "routes"]
