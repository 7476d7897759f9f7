"""A real SMTP server for tests (aiosmtpd), keeping received messages in memory."""

from __future__ import annotations

import asyncio
import warnings
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

import embedded


class Collector:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []  # (MAIL FROM, RCPT TOs) of each message
        self.refusing = False  # True: answer every message with a temporary failure (451)
        self.refused = 0
        self.delay = 0.0  # seconds to wait before answering a message (a slow server)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.refusing:
            self.refused += 1
            return "451 4.3.0 Temporarily unable to accept mail, try again later"
        self.messages.append(message_from_bytes(envelope.original_content or envelope.content, policy=policy.default))  # type: ignore[arg-type]
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


class SMTPSink:
    """Start with .start(); .messages lists what arrived. Optional AUTH (user, password)."""

    def __init__(self, auth: tuple[str, str] | None = None) -> None:
        self.port = embedded.free_port()
        self.collector = Collector()
        self.auth = auth
        self.controller: Controller | None = None

    @property
    def messages(self) -> list[EmailMessage]:
        return self.collector.messages

    @property
    def envelopes(self) -> list[tuple[str, list[str]]]:
        return self.collector.envelopes

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and self.auth == (data.login.decode(), data.password.decode())
        return AuthResult(success=ok)

    def start(self) -> SMTPSink:
        kwargs: dict[str, Any] = {}
        if self.auth:
            kwargs = {"authenticator": self._authenticate, "auth_required": True, "auth_require_tls": False}
        with warnings.catch_warnings():
            # AUTH over plain text is what we test here (loopback only); aiosmtpd warns about it.
            warnings.simplefilter("ignore", UserWarning)
            self.controller = Controller(self.collector, hostname="127.0.0.1", port=self.port, **kwargs)
            self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
