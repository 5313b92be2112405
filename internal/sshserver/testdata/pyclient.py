"""An SSH client person's script, for the embedded server's interop tests
(interop_test.go): asyncssh or paramiko, as their users call them.

usage: pyclient.py LIB MODE PORT USER KEY KNOWN_HOSTS [ARGS...]

KEY is a private key file, or several separated by commas, tried in order.
LIB is asyncssh, paramiko or paramiko-once (paramiko with the client-side
workaround documented in the README: one ssh-userauth service request per
connection). MODE is:
  exec CMD        run CMD, copy its stdout and stderr, exit with its status
  pty CMD         the same on a terminal (xterm, 24x80)
  sftp A B C      put local A as remote B, get B back as local C
  otp CODEFILE CMD  key, then the one-time code read from CODEFILE
  recheck         run "echo started; exec sleep 60" and wait for its end
The remote exit status is ours; "exit-signal NAME" goes to stderr and the
exit status is then 200. A failure prints "ERROR: <what the library said>"
on stderr and exits 255.
"""
import sys

LIB, MODE, PORT, USER, KEY, KNOWN = sys.argv[1:7]
ARGS = sys.argv[7:]
PORT = int(PORT)
KEYS = KEY.split(",")


def out(b):
    if isinstance(b, str):
        b = b.encode()
    sys.stdout.buffer.write(b)
    sys.stdout.flush()


def err(b):
    if isinstance(b, str):
        b = b.encode()
    sys.stderr.buffer.write(b)
    sys.stderr.flush()


def run_asyncssh():
    import asyncio
    import asyncssh

    class Client(asyncssh.SSHClient):
        def auth_banner_received(self, msg, lang):
            err(msg)

        def kbdint_auth_requested(self):
            return ""

        def kbdint_challenge_received(self, name, instructions, lang, prompts):
            with open(ARGS[0]) as f:
                code = f.read().strip()
            return [code for _ in prompts]

    async def main():
        async with asyncssh.connect("127.0.0.1", port=PORT, username=USER,
                                    client_keys=KEYS, known_hosts=KNOWN,
                                    agent_path=None, client_factory=Client,
                                    kbdint_auth=(MODE == "otp"),
                                    password=None) as c:
            if MODE == "sftp":
                async with c.start_sftp_client() as s:
                    await s.put(ARGS[0], ARGS[1])
                    await s.get(ARGS[1], ARGS[2])
                return 0
            cmd = {"exec": lambda: ARGS[0], "pty": lambda: ARGS[0],
                   "otp": lambda: ARGS[1],
                   "recheck": lambda: "echo started; exec sleep 60"}[MODE]()
            if MODE == "recheck":
                proc = await c.create_process(cmd, encoding=None)
                out(await proc.stdout.readline())
                rest = await proc.stdout.read()
                out(rest)
                err(await proc.stderr.read())
                await proc.wait_closed()
                r = proc
            else:
                r = await c.run(cmd, encoding=None,
                                term_type="xterm" if MODE == "pty" else None,
                                term_size=(80, 24) if MODE == "pty" else None)
                out(r.stdout or b"")
                err(r.stderr or b"")
            if r.exit_signal:
                err("exit-signal %s\n" % r.exit_signal[0])
                return 200
            return r.exit_status

    try:
        return asyncio.run(main())
    except (OSError, asyncssh.Error) as e:
        err("ERROR: %s: %s\n" % (type(e).__name__, e))
        return 255


def run_paramiko(once):
    import logging
    import paramiko
    import paramiko.auth_handler

    # paramiko logs the server's SSH_MSG_DISCONNECT at INFO; a person
    # running a script with logging on sees it there.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="paramiko: %(message)s")
    if once:
        # The workaround: after the first ssh-userauth service request
        # was accepted, go straight to the next authentication request.
        orig = paramiko.auth_handler.AuthHandler._request_auth

        def request_auth(self):
            if getattr(self.transport, "_latch_userauth", False):
                m = paramiko.Message()
                m.add_string("ssh-userauth")
                m.rewind()
                self._parse_service_accept(m)
                return
            self.transport._latch_userauth = True
            orig(self)

        paramiko.auth_handler.AuthHandler._request_auth = request_auth

    c = paramiko.SSHClient()
    c.load_host_keys(KNOWN)
    c.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        if MODE == "otp":
            t = paramiko.Transport(("127.0.0.1", PORT))
            t.start_client(timeout=10)
            want = paramiko.HostKeys(KNOWN).lookup("[127.0.0.1]:%d" % PORT)
            got = t.get_remote_server_key()
            if not want or want.get(got.get_name()) != got:
                err("ERROR: host key not the known one\n")
                return 255
            key = paramiko.Ed25519Key.from_private_key_file(KEYS[-1])
            left = t.auth_publickey(USER, key)
            if "keyboard-interactive" not in left:
                err("ERROR: no one-time code asked (%s)\n" % left)
                return 255

            def handler(title, instructions, prompts):
                with open(ARGS[0]) as f:
                    code = f.read().strip()
                return [code for _ in prompts]

            t.auth_interactive(USER, handler)
            ch = t.open_session()
            ch.exec_command(ARGS[1])
            out(ch.makefile("rb").read())
            err(ch.makefile_stderr("rb").read())
            return ch.recv_exit_status()
        c.connect("127.0.0.1", port=PORT, username=USER, key_filename=KEYS,
                  look_for_keys=False, allow_agent=False, timeout=10,
                  banner_timeout=10, auth_timeout=10)
        if MODE == "sftp":
            s = c.open_sftp()
            s.put(ARGS[0], ARGS[1])
            s.get(ARGS[1], ARGS[2])
            return 0
        cmd = ARGS[0] if MODE in ("exec", "pty") else "echo started; exec sleep 60"
        _, o, e = c.exec_command(cmd, get_pty=(MODE == "pty"))
        if MODE == "recheck":
            out(o.readline())
        out(o.read())
        err(e.read())
        return o.channel.recv_exit_status()
    except (OSError, paramiko.SSHException) as e:
        t = c.get_transport()
        if t is not None and t.get_banner():
            err(t.get_banner())
        err("ERROR: %s: %s\n" % (type(e).__name__, e))
        return 255


if LIB == "asyncssh":
    code = run_asyncssh()
else:
    code = run_paramiko(LIB == "paramiko-once")
sys.exit(code if code is not None and code >= 0 else 201)
