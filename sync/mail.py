"""Sending a message by SMTP, set up from the environment where the job runs.

    LEADGATE_SMTP_HOST      the relay (without it, digests go to the .eml outbox)
    LEADGATE_SMTP_PORT      default 25
    LEADGATE_SMTP_TLS       starttls | ssl | none; default ssl on port 465, starttls on 587,
                            none otherwise (a relay on this host or inside the network)
    LEADGATE_SMTP_USER      log in as this user, with
    LEADGATE_SMTP_PASSWORD  this password (sent only over TLS, or to a relay on this machine)
    LEADGATE_SMTP_CA_FILE   the CA that signed the relay's certificate, if not a public one

A failure is one short `Undelivered` reason (no password, no server transcript).
"""

from __future__ import annotations

import ipaddress
import os
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

TIMEOUT = 10.0
TLS_MODES = ("starttls", "ssl", "none")


class Undelivered(Exception):
    """Why a message was not handed to the relay, in a few words."""


@dataclass(frozen=True)
class Relay:
    host: str
    port: int
    tls: str
    user: str | None
    password: str | None
    ca_file: str | None

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_env(cls) -> Relay | None:
        """The relay the environment names; None when LEADGATE_SMTP_HOST is unset."""
        host = os.environ.get("LEADGATE_SMTP_HOST", "").strip()
        if not host:
            return None
        text = os.environ.get("LEADGATE_SMTP_PORT", "").strip() or "25"
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise Undelivered(f"LEADGATE_SMTP_PORT {text!r} is not a port number")
        port = int(text)
        tls = os.environ.get("LEADGATE_SMTP_TLS", "").strip().lower() or (
            "ssl" if port == 465 else "starttls" if port == 587 else "none")
        if tls not in TLS_MODES:
            raise Undelivered(f"LEADGATE_SMTP_TLS {tls!r} is not one of {', '.join(TLS_MODES)}")
        user = os.environ.get("LEADGATE_SMTP_USER") or None
        password = os.environ.get("LEADGATE_SMTP_PASSWORD") or None
        if user and not password:
            raise Undelivered("LEADGATE_SMTP_USER is set but LEADGATE_SMTP_PASSWORD is not")
        if user and tls == "none" and not _on_this_machine(host):
            raise Undelivered("will not send the SMTP password unencrypted (set "
                              "LEADGATE_SMTP_TLS=starttls or ssl)")
        return cls(host, port, tls, user, password,
                   os.environ.get("LEADGATE_SMTP_CA_FILE") or None)

    def send(self, msg: EmailMessage) -> None:
        try:
            self._send(msg)
        except smtplib.SMTPAuthenticationError:
            raise Undelivered("the relay refused the login (check LEADGATE_SMTP_USER and "
                              "LEADGATE_SMTP_PASSWORD)") from None
        except smtplib.SMTPNotSupportedError as exc:
            offered = "STARTTLS" if "STARTTLS" in str(exc) else "login (AUTH)"
            raise Undelivered(f"the relay does not offer {offered}") from None
        except smtplib.SMTPRecipientsRefused:
            raise Undelivered("the relay refused the recipients") from None
        except smtplib.SMTPSenderRefused:
            raise Undelivered("the relay refused the sender (LEADGATE_MAIL_FROM)") from None
        except ssl.SSLError:
            raise Undelivered("TLS failed (check the relay's certificate; "
                              "LEADGATE_SMTP_CA_FILE names a private CA)") from None
        except smtplib.SMTPException as exc:
            raise Undelivered(f"the relay failed ({type(exc).__name__})") from None
        except TimeoutError:
            raise Undelivered(f"no answer within {TIMEOUT:.0f} s") from None
        except OSError as exc:  # refused, unreachable, a name that does not resolve
            raise Undelivered(f"cannot connect ({exc.strerror or type(exc).__name__})") from None

    def _send(self, msg: EmailMessage) -> None:
        context = ssl.create_default_context(cafile=self.ca_file) if self.tls != "none" else None
        client: smtplib.SMTP
        if self.tls == "ssl":
            client = smtplib.SMTP_SSL(self.host, self.port, timeout=TIMEOUT, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=TIMEOUT)
        with client:
            if self.tls == "starttls":
                client.starttls(context=context)
            if self.user and self.password:
                client.login(self.user, self.password)
            client.send_message(msg)


def _on_this_machine(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
