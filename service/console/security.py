"""The console's session cookie, its CSRF token and the security headers of every console page.

The cookie holds the staff key itself, encrypted and authenticated (Fernet: AES and HMAC) with
a key derived from CONTENT_API_CONSOLE_SECRET, so the browser never holds a key it could use
anywhere else, and the server authenticates that key again on every request: revoking it ends
the console session at once, on every instance. The CSRF token is random per session and
lives inside the same encrypted cookie, so a form can only be posted from a page the console
rendered for that session (and SameSite=Strict keeps other sites from sending the cookie).
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from dataclasses import asdict, dataclass, replace
from datetime import timedelta

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.content.models import utcnow

COOKIE = "contentapi_console"
PREFIX = "/console"
# a working day: a forgotten browser does not stay signed in for long
LIFETIME = timedelta(hours=10)

HEADERS = {
    # no inline script or style anywhere in the console, and nothing from another origin
    "content-security-policy": (
        "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
        "object-src 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    # drafts and keys never belong in a shared or browser cache
    "cache-control": "no-store",
}


@dataclass(frozen=True)
class ConsoleSession:
    """What the cookie carries: the form token, the staff key once signed in, and a message
    for the next page (after a redirect)."""

    csrf: str
    expires: float  # POSIX time
    key: str | None = None
    flash: str | None = None

    @classmethod
    def fresh(cls, key: str | None = None, flash: str | None = None) -> ConsoleSession:
        return cls(
            csrf=secrets.token_urlsafe(32),
            expires=(utcnow() + LIFETIME).timestamp(),
            key=key,
            flash=flash,
        )

    def with_flash(self, flash: str | None) -> ConsoleSession:
        return replace(self, flash=flash)

    def accepts(self, token: object) -> bool:
        """Whether a posted form carries this session's token (compared in constant time)."""
        return isinstance(token, str) and hmac.compare_digest(token, self.csrf)


class SessionCodec:
    def __init__(self, secret: bytes, *, secure: bool) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"contentapi console session"
        ).derive(secret)
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))
        self.secure = secure

    def encode(self, session: ConsoleSession) -> str:
        # without base64's padding, the value needs no quoting in a Set-Cookie header
        return self._fernet.encrypt(json.dumps(asdict(session)).encode()).decode().rstrip("=")

    def decode(self, token: str | None) -> ConsoleSession | None:
        """The session in a cookie; None when there is none, or it was altered or has expired."""
        if not token:
            return None
        try:
            padded = token + "=" * (-len(token) % 4)
            fields = json.loads(self._fernet.decrypt(padded.encode()))
            session = ConsoleSession(**fields)
        except (InvalidToken, ValueError, TypeError):
            return None
        if session.expires <= utcnow().timestamp():
            return None
        return session

    def store(self, response: Response, session: ConsoleSession) -> None:
        response.set_cookie(
            COOKIE,
            self.encode(session),
            max_age=max(int(session.expires - utcnow().timestamp()), 0),
            path=PREFIX,
            secure=self.secure,
            httponly=True,
            samesite="strict",
        )


class SecurityHeaders:
    """Adds HEADERS to every response under the console's path, static files and errors too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
