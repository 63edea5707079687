"""The control plane of `agent-mesh serve`: a JSON API (with its OpenAPI document), the operator's web
page, /metrics and approval notifications, all on the shared state dir. No mitmproxy or mcp here.
"""

from policy.control.app import create_app
from policy.control.auth import OperatorAuth, check_token, load_or_create_token
from policy.control.notify import Notifier, sign, verify
from policy.control.plane import ControlPlane, Principal

__all__ = [
    "ControlPlane",
    "Notifier",
    "OperatorAuth",
    "Principal",
    "check_token",
    "create_app",
    "load_or_create_token",
    "sign",
    "verify",
]
