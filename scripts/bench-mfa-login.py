#!/usr/bin/env python3
"""Latency of a login with a second step (SPEC section 16) beside a password-only login,
one request at a time against a running service (SQLite or any backend).

Signs up N customers without and N with TOTP, then logs each in once per round:
`POST /auth/login` for the first; `POST /auth/login` (401 second factor required) then
`POST /auth/mfa` with the current code for the second. A code is accepted once per 30 s
step, so each enrolled customer logs in once per step: rounds wait for the next step.

Usage: scripts/bench-mfa-login.py [BASE_URL] [N] [ROUNDS]
  e.g. scripts/bench-mfa-login.py http://127.0.0.1:18080 20 3
"""
import base64, hashlib, hmac, json, statistics, struct, sys, time, urllib.error, urllib.request

BASE = (sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:18080") + "/api/account"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 20
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
PASSWORD = "bench-password-123"


def call(path, body, token=None):
    request = urllib.request.Request(BASE + path, data=json.dumps(body).encode(), method="POST")
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", "bearer " + token)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def totp(secret_b32, at):
    """RFC 6238, SHA-1, 6 digits, 30 s: written here from the RFC, not the service's code."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000)


def signup(tag, i):
    email = f"bench-{tag}-{i}-{time.time_ns()}@example.com"
    body = {"password": PASSWORD, "firstname": "B", "lastname": "M", "email": email,
            "address": "1 Bench St", "phone_number": str(time.time_ns())[-15:]}
    status, tokens = call("/auth/signup", body)
    assert status == 201, (status, tokens)
    return email, tokens["access_token"]


plain = [signup("plain", i)[0] for i in range(N)]
enrolled = []
for i in range(N):
    email, access = signup("mfa", i)
    status, enrolment = call("/info/mfa/totp", {"password": PASSWORD}, access)
    assert status == 200, (status, enrolment)
    status, body = call("/info/mfa/totp/confirm", {"code": totp(enrolment["secret"], time.time())}, access)
    assert status == 200, (status, body)
    enrolled.append((email, enrolment["secret"]))

timings = {"password only": [], "password + TOTP": [], "  of which the second step": []}
for round_ in range(ROUNDS):
    # A step none of these codes was used in yet.
    time.sleep(30 - time.time() % 30 + 0.2)
    for email in plain:
        start = time.perf_counter()
        status, _ = call("/auth/login", {"email": email, "password": PASSWORD})
        timings["password only"].append(time.perf_counter() - start)
        assert status == 200, status
    for email, secret in enrolled:
        start = time.perf_counter()
        status, body = call("/auth/login", {"email": email, "password": PASSWORD})
        assert status == 401 and body["msg"] == "second factor required", (status, body)
        second = time.perf_counter()
        status, body = call("/auth/mfa", {"mfa_token": body["mfa_token"], "code": totp(secret, time.time())})
        end = time.perf_counter()
        assert status == 200, (status, body)
        timings["password + TOTP"].append(end - start)
        timings["  of which the second step"].append(end - second)

print(f"{N} customers each, {ROUNDS} rounds, one request at a time")
print(f"{'':30} {'n':>4} {'p50 ms':>8} {'p90 ms':>8} {'max ms':>8}")
for name, values in timings.items():
    values = sorted(v * 1000 for v in values)
    p90 = values[int(len(values) * 0.9) - 1]
    print(f"{name:30} {len(values):4} {statistics.median(values):8.1f} {p90:8.1f} {values[-1]:8.1f}")
