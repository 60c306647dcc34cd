"""SMTP email: the standard library's smtplib in a worker thread, with STARTTLS or implicit TLS and login."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import time
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from chassis.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    Unavailable,
    Violations,
)
from protomesh.integration.v1 import integration_pb2
from services.integration.clients.base import (
    ClientSpec,
    ExternalClient,
    Operation,
    Shared,
    Steps,
    Target,
    flag,
    number,
    scrub,
    string_list,
    text,
    unknown_keys,
)

CONFIG_FIELDS = ("host*", "port", "tls", "starttls", "from_address", "helo_name")


def _address_ok(address: str) -> bool:
    local, _, domain = address.rpartition("@")
    return bool(local) and bool(domain) and " " not in address and "\n" not in address and "\r" not in address


def validate_config(v: Violations, config: dict[str, Any], credentials: Mapping[str, str]) -> None:
    """host; TLS choices; login needs both username and password."""
    unknown_keys(v, config, [f.rstrip("*") for f in CONFIG_FIELDS] + ["resilience", "rate_limit", "cache"], "config")
    text(v, config, "host", "config.host", required=True, max_len=255)
    number(v, config, "port", "config.port", low=1, high=65535, integer=True)
    tls = flag(v, config, "tls", "config.tls")
    starttls = flag(v, config, "starttls", "config.starttls")
    v.check(not (tls and starttls), "config.starttls", "not together with config.tls (implicit TLS)")
    sender = text(v, config, "from_address", "config.from_address", max_len=320)
    v.check(not sender or _address_ok(sender), "config.from_address", "must be an email address")
    text(v, config, "helo_name", "config.helo_name", max_len=255)
    v.check(bool(credentials.get("username")) == bool(credentials.get("password")), "credentials.password",
            "username and password go together")


def validate_params(v: Violations, operation: str, params: dict[str, Any], config: dict[str, Any]) -> None:
    """send: from (or config.from_address), to, subject, text or html."""
    unknown_keys(v, params, ("from", "to", "cc", "subject", "text", "html"), "parameters")
    sender = text(v, params, "from", "parameters.from", max_len=320) or config.get("from_address", "")
    v.check(bool(sender), "parameters.from", "required (or set config.from_address)")
    v.check(not sender or _address_ok(sender), "parameters.from", "must be an email address")
    for key in ("to", "cc"):
        for i, address in enumerate(string_list(v, params, key, f"parameters.{key}", required=key == "to")):
            v.check(_address_ok(address), f"parameters.{key}[{i}]", "must be an email address")
    subject = text(v, params, "subject", "parameters.subject", required=True, max_len=998)
    v.check("\n" not in subject and "\r" not in subject, "parameters.subject", "must be one line")
    body = text(v, params, "text", "parameters.text", max_len=1_000_000)
    html = text(v, params, "html", "parameters.html", max_len=1_000_000)
    v.check(bool(body or html), "parameters.text", "text or html is required")


def _port(config: Mapping[str, Any]) -> int:
    return int(config.get("port") or (465 if config.get("tls") else 25))


def targets(config: dict[str, Any]) -> list[Target]:
    """The server."""
    return [Target("config.host", config["host"], _port(config))]


def binding(config: dict[str, Any]) -> dict[str, Any]:
    """The login is for this server."""
    return {"config.host": str(config.get("host") or "").lower(), "config.port": _port(config)}


class _Pinned:
    """Connects to an address checked beforehand instead of resolving the host again; the host name
    still names the server for TLS (smtplib keeps it as _host)."""

    address = ""

    def _get_socket(self, host: str, port: int, timeout: float) -> Any:
        return super()._get_socket(self.address, port, timeout)  # type: ignore[misc]


class _PinnedSMTP(_Pinned, smtplib.SMTP):
    pass


class _PinnedSMTPSSL(_Pinned, smtplib.SMTP_SSL):
    pass


class SmtpClient(ExternalClient):
    """Sends email through one SMTP server."""

    async def _addresses(self) -> list[str]:
        try:
            return await self.shared.targets.check(self.config["host"], _port(self.config), "config.host")
        except OSError as exc:
            raise self._error(exc) from None

    def _connect(self, addresses: list[str], timeout: float) -> smtplib.SMTP:
        host, port = self.config["host"], _port(self.config)
        helo = self.config.get("helo_name") or None
        smtp: smtplib.SMTP
        for i, address in enumerate(addresses):
            if self.config.get("tls"):
                smtp = _PinnedSMTPSSL(local_hostname=helo, timeout=timeout, context=ssl.create_default_context())
            else:
                smtp = _PinnedSMTP(local_hostname=helo, timeout=timeout)
            smtp.address = address
            try:
                smtp.connect(host, port)
                break
            except OSError:
                smtp.close()
                if i == len(addresses) - 1:
                    raise
        smtp.ehlo()
        if self.config.get("starttls"):
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if self.credential("username"):
            # One mechanism, PLAIN when offered: smtplib's login() would try the next mechanism after a
            # refusal, which only multiplies failed logins (and hangs some servers).
            smtp.user, smtp.password = self.credential("username"), self.credential("password")
            if "PLAIN" in (smtp.esmtp_features.get("auth") or "").upper().split():
                smtp.auth("PLAIN", smtp.auth_plain)
            else:
                smtp.login(smtp.user, smtp.password)
        return smtp

    def _error(self, exc: BaseException) -> Exception:
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return FailedPrecondition(f"{self.name}: the SMTP server refused the login (code {exc.smtp_code}); "
                                      "update the integration's credentials")
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            return InvalidArgument([FieldViolation("parameters.to", scrub(
                f"refused by the server: {', '.join(exc.recipients)}", self.secrets))])
        if isinstance(exc, smtplib.SMTPSenderRefused):
            return InvalidArgument([FieldViolation("parameters.from", f"refused by the server (code {exc.smtp_code})")])
        if isinstance(exc, TimeoutError):
            return DeadlineExceeded(f"{self.name}: the SMTP server did not answer in time")
        if isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code < 500:
            return Unavailable(f"{self.name}: the SMTP server answered {exc.smtp_code} (try later)")
        if isinstance(exc, smtplib.SMTPResponseException):
            return FailedPrecondition(f"{self.name}: the SMTP server answered {exc.smtp_code}")
        return Unavailable(f"{self.name} is unreachable: {scrub(f'{type(exc).__name__}: {exc}', self.secrets)}")

    async def _in_thread(self, work: Any, timeout: float) -> Any:
        try:
            # The socket timeout ends the thread too; wait_for only stops waiting for it.
            return await asyncio.wait_for(asyncio.to_thread(work), timeout=timeout + 0.5)
        except (smtplib.SMTPException, OSError, TimeoutError) as exc:
            raise self._error(exc) from None

    async def invoke(self, operation: str, params: dict[str, Any], timeout: float) -> dict[str, Any]:
        message = EmailMessage()
        sender = params.get("from") or self.config.get("from_address")
        message["From"] = sender
        message["To"] = ", ".join(params["to"] if isinstance(params["to"], list) else [params["to"]])
        if params.get("cc"):
            message["Cc"] = ", ".join(params["cc"] if isinstance(params["cc"], list) else [params["cc"]])
        message["Subject"] = params["subject"]
        message["Message-ID"] = make_msgid(domain="protomesh.local")
        message.set_content(params.get("text") or "")
        if params.get("html"):
            message.add_alternative(params["html"], subtype="html")

        addresses = await self._addresses()

        def send() -> dict[str, Any]:
            with self._connect(addresses, timeout) as smtp:
                refused = smtp.send_message(message)
            recipients = [a.strip() for a in message["To"].split(",")] + (
                [a.strip() for a in message["Cc"].split(",")] if message["Cc"] else [])
            return {"message_id": message["Message-ID"], "accepted": [a for a in recipients if a not in refused],
                    "refused": {a: f"{code} {reason.decode(errors='replace')}"
                                for a, (code, reason) in refused.items()}}

        return await self._in_thread(send, timeout)

    async def health(self, timeout: float) -> str:
        addresses = await self._addresses()

        def noop() -> str:
            with self._connect(addresses, timeout) as smtp:
                code, _ = smtp.noop()
            return f"NOOP answered {code}"

        return await self._in_thread(noop, timeout)

    async def test(self, steps: Steps, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        holder: dict[str, smtplib.SMTP] = {}

        async def connect() -> str:
            addresses = await self._addresses()

            def work() -> str:
                holder["smtp"] = self._connect(addresses, deadline - time.monotonic())
                features = sorted(holder["smtp"].esmtp_features)
                return f"EHLO ok; extensions: {', '.join(features) or 'none'}"
            return await self._in_thread(work, deadline - time.monotonic())

        async def noop() -> str:
            def work() -> str:
                code, _ = holder["smtp"].noop()
                holder["smtp"].quit()
                return f"NOOP {code}, QUIT"
            return await self._in_thread(work, deadline - time.monotonic())

        await steps.run("connect, EHLO" + (", STARTTLS" if self.config.get("starttls") else "")
                        + (", login" if self.credential("username") else ""), connect)
        await steps.run("NOOP", noop)
        if "smtp" in holder:
            holder["smtp"].close()


SPEC = ClientSpec(
    client_type="smtp",
    kind=integration_pb2.INTEGRATION_KIND_SMTP,
    description="SMTP email servers (SendGrid, Mailgun or any other): send with STARTTLS or TLS and login",
    operations=(Operation("send"),),
    config_fields=CONFIG_FIELDS,
    credential_fields=("username", "password"),
    validate_config=validate_config,
    validate_params=validate_params,
    factory=SmtpClient,
    targets=targets,
    binding=binding,
)

__all__ = ["SPEC", "Shared"]
