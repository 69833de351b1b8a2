"""A small HTTP/1.1 client over real sockets (http.client), bound to a chosen local address."""

import base64
import hashlib
import hmac
import http.client
import json
import uuid


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def __repr__(self):
        return f"<{self.status} {self.body[:200]!r}>"


class Conn:
    """One keep-alive connection from `source` to the host."""

    def __init__(self, host, source="127.0.0.1", timeout=30):
        self.port = host.port
        self.source = source
        self.timeout = timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None, token=None):
        headers = dict(headers or {})
        if token:
            headers["authorization"] = f"Bearer {token}"
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            headers.setdefault("content-type", "application/json")
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout,
                                                       source_address=(self.source, 0))
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                response = Response(r.status, r.getheaders(), data.decode("utf-8", "replace"))
                if response.headers.get("connection", "").lower() == "close":
                    self.close()
                return response
            except (http.client.HTTPException, ConnectionError, OSError):
                self.close()
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def once(host, method, path, body=None, headers=None, token=None, source="127.0.0.1"):
    c = Conn(host, source)
    try:
        return c.request(method, path, body, headers, token)
    finally:
        c.close()


def login(host, email, password, source="127.0.0.1", forwarded_for=None):
    headers = {"x-forwarded-for": forwarded_for} if forwarded_for else None
    return once(host, "POST", "/auth/login", {"email": email, "password": password}, headers, source=source)


def token_for(host, email, password, source="127.0.0.1"):
    r = login(host, email, password, source)
    if r.status != 200:
        raise RuntimeError(f"login as {email}: {r}")
    return r.json()["access_token"]


def create_user(host, admin_token, role, password):
    email = f"{role}-{uuid.uuid4().hex[:12]}@attack.test"
    r = once(host, "POST", "/api/v1/users", {"email": email, "password": password, "role": role}, token=admin_token)
    if r.status != 201:
        raise RuntimeError(f"creating a {role}: {r}")
    return email, r.json()["id"]


def metrics_text(host, token=None):
    metrics_addr = host.env.get("LESSOR_METRICS_ADDR")
    if metrics_addr:
        h, _, p = metrics_addr.rpartition(":")
        conn = http.client.HTTPConnection(h, int(p), timeout=10)
        conn.request("GET", "/metrics")
        return conn.getresponse().read().decode()
    metrics_token = host.env.get("LESSOR_METRICS_TOKEN")
    return once(host, "GET", "/metrics", token=token or metrics_token).body


# -- tokens ------------------------------------------------------------------------------------

def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_claims(token):
    return json.loads(_unb64(token.split(".")[1]))


def jwt_resign(token, secret, **changes):
    """The same token (header, jti, expiry) with `changes` to its claims, signed with `secret`:
    what an attacker holding the signing key, or a confused component, could present."""
    header, payload, _ = token.split(".")
    claims = json.loads(_unb64(payload))
    claims.update(changes)
    body = f"{header}.{_b64(json.dumps(claims, separators=(',', ':')).encode())}"
    key = secret.encode() if isinstance(secret, str) else secret
    signature = hmac.new(key, body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(signature)}"


def stripe_signature(secret, body, timestamp):
    signed = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signed}"
