"""A real SMTP server for nightshift's tests (aiosmtpd), on 127.0.0.1.

usage: smtp_peer.py MAILDIR CERT KEY PORT USER PASSWORD MODE
MODE: auth    STARTTLS required, AUTH PLAIN/LOGIN required (USER/PASSWORD)
      reject  STARTTLS + AUTH as above, but every message gets 554 (a 5xx)
      defer   STARTTLS + AUTH as above, but every message gets 451 (a 4xx)
      plain   no TLS, no AUTH (a loopback relay)
Prints "ready" when it listens; stops on SIGTERM.
"""
import signal
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

maildir, cert, key, port, user, pw, mode = sys.argv[1:8]


def check(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (user.encode(), pw.encode())
    # handled=False: aiosmtpd sends the 535 itself (else the client hangs)
    return AuthResult(success=ok, handled=False)


class Refusing(Mailbox):
    async def handle_DATA(self, server, session, envelope):
        return "554 5.7.1 Message rejected by policy" if mode == "reject" else "451 4.3.0 Try again later"


handler = Mailbox(maildir) if mode in ("auth", "plain") else Refusing(maildir)
if mode == "plain":
    ctl = Controller(handler, hostname="127.0.0.1", port=int(port))
else:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    ctl = Controller(handler, hostname="127.0.0.1", port=int(port), tls_context=tls,
                     require_starttls=True, authenticator=check, auth_required=True, auth_require_tls=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
ctl.start()
print("ready", flush=True)
try:
    signal.pause()
finally:
    ctl.stop()
