"""The authentication replies cairn must share with redis-server 7.0 (the
node and the gateway alike): the texts, request sequences that exercise
them, and a helper that sends a sequence in one write and collects the
replies.  Used by test_gateway_auth.py and test_server.py."""
from cairnlib import RedisServer, Resp, RespError, resp_encode

PASS = "p@ss w0rd"  # a space and a symbol: quoting must survive flags and files

NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
NOPASS_AUTH = ("ERR AUTH <password> called without any password configured for the default user. "
               "Are you sure your configuration is correct?")
HELLO_NOAUTH = ("NOAUTH HELLO must be called with the client already authenticated, otherwise the "
                "HELLO AUTH <user> <pass> option can be used to authenticate the client and select "
                "the RESP protocol version at the same time")


class LockedRedis(RedisServer):
    """redis-server --requirepass PASS (its readiness PING needs the password)."""

    def __init__(self, base):
        super().__init__(base, args=["--requirepass", PASS])

    def client(self, timeout=10, **kw):
        kw.setdefault("password", PASS)
        return super().client(timeout=timeout, **kw)


def replies(port, cmds, timeout=5):
    """Send every command in one write; return the replies, errors as
    ("ERR", text) and HELLO's map as "HELLO-MAP" (its id and mode differ
    between a gateway and a server by design)."""
    s = Resp(port, timeout=timeout)
    try:
        s.send(b"".join(resp_encode(*c) for c in cmds))
        out = []
        for _ in cmds:
            v = s.read()
            if isinstance(v, RespError):
                v = ("ERR", str(v))
            elif (isinstance(v, list) and v[:1] == [b"server"]) or (isinstance(v, dict) and b"server" in v):
                v = "HELLO-MAP"
            out.append(v)
        return out
    finally:
        s.close()


LOCKED_SEQ = [
    ("GET", "k"), ("PING",), ("NOSUCH", "x"), ("GET",), ("AUTH",), ("HELLO",), ("HELLO", "2"),
    ("HELLO", "4"), ("HELLO", "abc"), ("HELLO", "02"), ("HELLO", "2", "AUTH", "default"),
    ("HELLO", "2", "AUTH", "default", "wrong"), ("HELLO", "2", "AUTH", "foo", PASS),
    ("HELLO", "2", "SETNAME", "a b", "AUTH", "default", PASS), ("HELLO", "2", "FOO"),
    ("AUTH", "wrong"), ("AUTH", "default", "wrong"), ("AUTH", "DEFAULT", PASS), ("AUTH", ""),
    ("AUTH", "a", "b", "c"), ("MULTI",), ("EXEC",), ("DISCARD",), ("WATCH", "k"), ("CLIENT", "ID"),
    ("INFO",), ("CONFIG", "GET", "requirepass"), ("SELECT", "0"), ("GET", "k"),
    # authenticated from here; a failed AUTH does not undo it
    ("AUTH", PASS), ("AUTH", "wrong"), ("GET", "auth:missing"), ("AUTH", "default", PASS),
    ("HELLO", "2", "AUTH", "default", "wrong"), ("GET", "auth:missing"), ("AUTH", "a", "b", "c"),
    ("HELLO", "2"), ("HELLO", "2", "SETNAME", "a b"), ("HELLO", "2", "SETNAME"),
]

# HELLO's AUTH applies at once, even when a later option fails
LOCKED_SEQ_2 = [("HELLO", "2", "AUTH", "default", PASS, "SETNAME", "a b"), ("GET", "auth:missing"),
                ("HELLO", "2", "AUTH", "default", PASS, "AUTH", "default", "wrong"), ("PING",)]

PLAIN_SEQ = [
    ("AUTH", "x"), ("AUTH", PASS), ("AUTH", "default", "x"), ("AUTH", "foo", "x"),
    ("AUTH", "DEFAULT", "x"), ("AUTH", "a", "b", "c"), ("AUTH",), ("HELLO", "2", "AUTH", "foo", "x"),
    ("HELLO", "2", "AUTH", "default", "anything"), ("HELLO", "2", "AUTH", "default"), ("HELLO", "2"),
    ("GET", "auth:missing"),
]
