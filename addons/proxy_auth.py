"""Who is calling: proxy credentials (`http://agent:token@host:port`) checked against `agents:`.

Tokens are read here (a `{$env}`/`{$file}` secret is resolved by the proxy only, never by mcpwrap or the
operator commands), compared in constant time and never leave this module; without `agents:` the identity is the
proxy user name, else `anonymous`. A user name `AGENT/SESSION` (`%2F` in a URL) also tags the calls with a
session id, so a process can link its proxied calls to its other traced calls.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from addons.agent_env import parse_session
from policy import Config
from policy.core.secrets import reveal

ANONYMOUS = "anonymous"
REALM = "agent-mesh"


@dataclass(frozen=True, slots=True)
class Identity:
    agent: str
    session: str | None = None


class AuthRequired(ValueError):
    """The request must be refused with 407: missing, malformed or wrong credentials."""


def parse_basic(value: str) -> tuple[str, str]:
    """`Basic base64(user:pass)` -> (user, pass). Raises ValueError."""
    scheme, _, encoded = value.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise ValueError("credentials must use the Basic scheme")
    try:
        user, colon, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("credentials are not valid base64 of user:password") from None
    if not colon or not user:
        raise ValueError("credentials must be user:password")
    return user, password


@dataclass(frozen=True, slots=True)
class AgentAuth:
    """Validates proxy credentials; built once from the config."""

    tokens: Mapping[str, str | None]

    @classmethod
    def from_config(cls, config: Config, env: Mapping[str, str] | None = None) -> AgentAuth:
        """The tokens of `agents:`, `{$env}`/`{$file}` secrets read now: the proxy is the one surface that
        needs them. Raises SecretMissing (a ConfigError naming the key, file and line)."""
        return cls({name: reveal(spec.token, env) for name, spec in config.agents.items()})

    @property
    def required(self) -> bool:
        return bool(self.tokens)

    def identify(self, header: str | None) -> Identity:
        """Who sent a `Proxy-Authorization` value (None when absent). Raises AuthRequired."""
        if header is None:
            if self.required:
                raise AuthRequired("proxy credentials required: use http://AGENT:TOKEN@host:port")
            return Identity(ANONYMOUS)
        try:
            name, password = parse_basic(header)
        except ValueError as exc:
            raise AuthRequired(str(exc)) from None
        user, _, session = name.partition("/")
        if not user:
            raise AuthRequired("credentials must name an agent")
        if session:
            # The agent writes its own user name: the session obeys the grammar `env --session` writes, so no
            # escape, separator or kilobyte of text lands in every trace record of the connection.
            try:
                parse_session(session)
            except ValueError as exc:
                raise AuthRequired(f"the session in the proxy user AGENT/SESSION: {exc}") from None
        identity = Identity(user, session or None)
        if not self.required:
            return identity
        expected = self.tokens.get(user)
        # Compare against a dummy for unknown agents too, so timing does not reveal which names exist.
        known = user in self.tokens
        secret = (expected or "") if known else "\x00unknown-agent"
        ok = hmac.compare_digest(password.encode("utf-8"), secret.encode("utf-8"))
        if not known or (expected is not None and not ok):
            raise AuthRequired("unknown agent or wrong token")
        return identity
