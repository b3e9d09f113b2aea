"""Schemathesis (4.32.x) hooks for saga-account: bearer tokens for every operation.

Load with the env var  SCHEMATHESIS_HOOKS=/abs/path/st_hooks.py   (a path containing "/" or ending
in ".py" is exec'd as a file; a bare name like "st_hooks" is imported from the CWD / sys.path),
or with  hooks = "st_hooks"  at the top of schemathesis.toml.

Three kinds of operations:
  DISPOSABLE  destroy the account or all of its sessions (account delete, password change,
              logout-all): every request gets a brand-new account (sign-up -> its token), so the
              shared account is never touched.
  FRESH       revoke only the calling session (logout): every request logs the shared account in
              again and uses that new token.
  everything  one shared token, cached for REFRESH_S seconds; a 401 on a request that carried it
  else        makes schemathesis drop the cache, log in again and replay the request once.

Schemathesis does not call these providers for the cases where it deliberately sends no or bad
credentials (the ignored_auth check, "missing Authorization" negative cases), so those still test
that the API answers 401.

Do NOT also pass `-H "Authorization: ..."`: headers from -H / [headers] override what an auth
provider sets, and they also switch auto-signup off (harmless), so the providers would be ignored.

Env:
  ST_EMAIL / ST_PASSWORD   the shared account; signed up on first use if login answers 401
  ST_LOGIN_PATH            default /login        (relative to the schema's base URL / --url)
  ST_SIGNUP_PATH           default /signup
  ST_DISPOSABLE_RE         default (logout-all|/password)$  (plus DELETE .../account, see is_disposable)
  ST_FRESH_RE              default /logout$
  ST_TOKEN_FIELD           default access_token (field of the login / sign-up response)
"""

from __future__ import annotations

import os
import re
import secrets

import requests
import schemathesis

EMAIL = os.environ.get("ST_EMAIL", "schemathesis-shared@example.com")
PASSWORD = os.environ.get("ST_PASSWORD", "Shared-Passw0rd!")
LOGIN_PATH = os.environ.get("ST_LOGIN_PATH", "/api/account/auth/login")
SIGNUP_PATH = os.environ.get("ST_SIGNUP_PATH", "/api/account/auth/signup")
TOKEN_FIELD = os.environ.get("ST_TOKEN_FIELD", "access_token")
TIMEOUT = float(os.environ.get("ST_AUTH_TIMEOUT", "10"))
REFRESH_S = int(os.environ.get("ST_TOKEN_REFRESH_S", "240"))  # keep below the access-token TTL
# Matched with re.search against the path as written in the OpenAPI document.
DISPOSABLE_RE = os.environ.get("ST_DISPOSABLE_RE", r"(logout-all|/info/password)$")
FRESH_RE = os.environ.get("ST_FRESH_RE", r"/logout$")


def signup_body(email: str, password: str) -> dict:
    # Passes the service's own validation (names, address, phone rules).
    return {
        "email": email,
        "password": password,
        "firstname": "Schema",
        "lastname": "Thesis",
        "address": "1 Test Street",
        # Phone numbers are unique, like emails.
        "phone_number": "+1" + str(secrets.randbelow(10**12)).zfill(12),
    }


def base_url(ctx) -> str:
    # The base URL schemathesis itself uses (servers[0] or --url), without a trailing slash.
    return ctx.operation.schema.get_base_url().rstrip("/")


def login(base: str, email: str, password: str) -> str:
    r = requests.post(f"{base}{LOGIN_PATH}", json={"email": email, "password": password}, timeout=TIMEOUT)
    r.raise_for_status()  # an exception here is reported as an "Authentication Error" for the operation
    return r.json()[TOKEN_FIELD]


def signup(base: str, email: str, password: str) -> str:
    r = requests.post(f"{base}{SIGNUP_PATH}", json=signup_body(email, password), timeout=TIMEOUT)
    r.raise_for_status()
    return r.json()[TOKEN_FIELD]


def shared_login(base: str) -> str:
    """Log the shared account in, signing it up first if it does not exist yet."""
    try:
        return login(base, EMAIL, PASSWORD)
    except requests.HTTPError as exc:
        # 404: no such customer yet (the service's default answer for an unknown email).
        if exc.response is None or exc.response.status_code not in (401, 404):
            raise
    r = requests.post(f"{base}{SIGNUP_PATH}", json=signup_body(EMAIL, PASSWORD), timeout=TIMEOUT)
    if r.status_code not in (200, 201, 400, 409):  # 400/409: duplicate entry -> wrong password, login fails
        r.raise_for_status()
    return login(base, EMAIL, PASSWORD)


def set_bearer(case, token: str) -> None:
    case.headers = case.headers or {}
    case.headers["Authorization"] = f"bearer {token}"


def is_disposable(ctx) -> bool:
    op = ctx.operation
    return bool(re.search(DISPOSABLE_RE, op.path)) or (
        op.method.upper() == "DELETE" and re.search(r"/account$", op.path) is not None
    )


def is_fresh(ctx) -> bool:
    return not is_disposable(ctx) and re.search(FRESH_RE, ctx.operation.path) is not None


# Providers are tried in registration order; the first whose filter matches supplies the token.
# refresh_interval=None: no caching, `get` runs for every single request.
def positive(case) -> bool:
    try:
        return str(case.meta.generation.mode).lower().endswith("positive")
    except AttributeError:
        return False


def fill_password(case) -> None:
    # A valid request that re-proves the password (password change, account deletion, the
    # second factor's enrolment and removal) knows it; a generated one never would, and every
    # such request would be refused 401, which reads as "authentication failed".
    if positive(case) and isinstance(case.body, dict):
        for field in ("current_password", "password"):
            if field in case.body:
                case.body[field] = PASSWORD


@schemathesis.auth(refresh_interval=None).apply_to(is_disposable)
class DisposableAccount:
    def get(self, case, ctx):
        email = f"st-{secrets.token_hex(8)}@example.com"
        return signup(base_url(ctx), email, PASSWORD)

    def set(self, case, data, ctx):
        set_bearer(case, data)
        fill_password(case)


@schemathesis.auth(refresh_interval=None).apply_to(is_fresh)
class FreshSession:
    def get(self, case, ctx):
        return shared_login(base_url(ctx))

    def set(self, case, data, ctx):
        set_bearer(case, data)


# Cached; retry_on=[401] (the default) turns on "re-login and replay once" after a 401.
@schemathesis.auth(refresh_interval=REFRESH_S).skip_for(lambda ctx: is_disposable(ctx) or is_fresh(ctx))
class SharedSession:
    def get(self, case, ctx):
        return shared_login(base_url(ctx))

    def set(self, case, data, ctx):
        set_bearer(case, data)
        # Enrolment stays pending (a generated code never confirms it), so the shared account
        # never gains a second factor and its logins stay one step.
        if "/info/mfa/" in ctx.operation.path:
            fill_password(case)
