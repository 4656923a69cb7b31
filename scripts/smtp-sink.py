"""The SMTP server the tests deliver to: a real one (aiosmtpd) on loopback.

    smtp-sink.py HOST PORT DIR

Every client must sign in (AUTH PLAIN or LOGIN; plain text is allowed on loopback). A login
is accepted when its password is "pw-" followed by the login, so a test picks a login of
its own and finds exactly its own messages: each one accepted is written, as received, to
DIR/<login>/<sequence>.eml once the server has answered 250. Anything else is refused the
way a real server refuses it (535 for a wrong password, 530 for mail without sign-in).
"""

import asyncio
import itertools
import os
import re
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

SAFE_LOGIN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def authenticate(server, session, envelope, mechanism, auth_data):
    if not isinstance(auth_data, LoginPassword):
        return AuthResult(success=False, handled=False)
    login = auth_data.login.decode("utf-8", "replace")
    password = auth_data.password.decode("utf-8", "replace")
    if SAFE_LOGIN.match(login) and password == "pw-" + login:
        return AuthResult(success=True, auth_data=login)
    return AuthResult(success=False, handled=False)


class Sink:
    def __init__(self, folder):
        self.folder = folder
        self.sequence = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        login = session.auth_data
        box = os.path.join(self.folder, login)
        os.makedirs(box, exist_ok=True)
        name = f"{next(self.sequence):06d}"
        partial = os.path.join(box, name + ".part")
        with open(partial, "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(partial, os.path.join(box, name + ".eml"))
        return "250 OK stored"


class Server(Controller):
    def factory(self):
        return SMTP(
            self.handler,
            hostname="mail.test",
            auth_required=True,
            auth_require_tls=False,
            authenticator=authenticate,
        )


def main():
    host, port, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.makedirs(folder, exist_ok=True)
    controller = Server(Sink(folder), hostname=host, port=port)
    controller.start()
    print(f"smtp-sink on {host}:{port} writing to {folder}", flush=True)
    try:
        asyncio.new_event_loop().run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
