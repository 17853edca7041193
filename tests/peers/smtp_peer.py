"""A real SMTP server for nightshift's tests (aiosmtpd), on 127.0.0.1.

usage: smtp_peer.py MAILDIR CERT KEY PORT USER PASSWORD MODE
MODE: auth    STARTTLS required, AUTH PLAIN/LOGIN required (USER/PASSWORD)
      reject  STARTTLS + AUTH as above, but every message gets 554 (a 5xx)
      defer   STARTTLS + AUTH as above, but every message gets 451 (a 4xx)
      plain   no TLS, no AUTH (a loopback relay)
      misbehave-KIND  STARTTLS + AUTH; the first message is met by KIND, later
              ones are accepted (KIND: drop = the connection closes after
              DATA with no reply; cut = it closes in the middle of the
              message body, after the first line of it; 421, 451, 452 =
              that answer; stall = no answer for 60 s) or, for 550 and 554,
              every message is refused
      badtls  STARTTLS with a certificate no CA signed for this relay
      size-N  STARTTLS + AUTH, and no message over N bytes: SIZE N in EHLO,
              552 for a bigger one (as Postfix's message_size_limit)
Prints "ready" when it listens; stops on SIGTERM.
"""
import asyncio
import signal
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

maildir, cert, key, port, user, pw, mode = sys.argv[1:8]


def check(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (user.encode(), pw.encode())
    # handled=False: aiosmtpd sends the 535 itself (else the client hangs)
    return AuthResult(success=ok, handled=False)


class Refusing(Mailbox):
    async def handle_DATA(self, server, session, envelope):
        return "554 5.7.1 Message rejected by policy" if mode == "reject" else "451 4.3.0 Try again later"


class Misbehaving(Mailbox):
    """Meets the first message with `kind`; 5xx kinds refuse every one."""

    def __init__(self, maildir, kind):
        super().__init__(maildir)
        self.kind = kind
        self.seen = 0

    async def handle_DATA(self, server, session, envelope):
        self.seen += 1
        if self.kind in ("550", "554"):
            return f"{self.kind} 5.7.1 Refused for good"
        if self.seen == 1:
            if self.kind == "drop":
                server.transport.close()
                return "421 closing"  # never reaches the client
            if self.kind == "stall":
                await asyncio.sleep(60)
                server.transport.close()
                return "421 too late"
            return f"{self.kind} 4.3.0 Try again later"
        return await super().handle_DATA(server, session, envelope)


class CutMidBody(SMTP):
    """The first message's connection closes while its body is on the way."""

    cut = [True]

    async def smtp_DATA(self, arg):
        if not CutMidBody.cut[0] or not self.envelope.rcpt_tos:
            return await super().smtp_DATA(arg)
        CutMidBody.cut[0] = False
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        await self._reader.readuntil(b"\r\n")  # the first line of the body
        self.transport.close()


class CuttingController(Controller):
    def factory(self):
        return CutMidBody(self.handler, **self.SMTP_kwargs)


if mode == "misbehave-cut":
    handler = Mailbox(maildir)
elif mode.startswith("misbehave-"):
    handler = Misbehaving(maildir, mode.split("-", 1)[1])
elif mode in ("auth", "plain", "badtls") or mode.startswith("size-"):
    handler = Mailbox(maildir)
else:
    handler = Refusing(maildir)
if mode == "plain":
    ctl = Controller(handler, hostname="127.0.0.1", port=int(port))
else:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if mode == "badtls":
        # A certificate of its own making: not the test CA's.
        import subprocess, tempfile
        d = tempfile.mkdtemp()
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", f"{d}/k.pem", "-out", f"{d}/c.pem", "-days", "2",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                       check=True, capture_output=True)
        cert, key = f"{d}/c.pem", f"{d}/k.pem"
    tls.load_cert_chain(cert, key)
    kind = CuttingController if mode == "misbehave-cut" else Controller
    limit = {"data_size_limit": int(mode.split("-", 1)[1])} if mode.startswith("size-") else {}
    ctl = kind(handler, hostname="127.0.0.1", port=int(port), tls_context=tls,
                     require_starttls=True, authenticator=check, auth_required=True, auth_require_tls=True,
                     **limit)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
ctl.start()
print("ready", flush=True)
try:
    signal.pause()
finally:
    ctl.stop()
