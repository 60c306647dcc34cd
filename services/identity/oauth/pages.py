"""The two server-rendered pages: sign in for an authorization request, and approve a device.

Plain HTML with every value escaped; each form carries the authorization request's parameters in hidden
fields and a CSRF token that must equal the `pm_csrf` cookie set with the page (double submit: another
site can make a browser post the form but cannot read or set the cookie).
"""

from __future__ import annotations

import html
from collections.abc import Iterable

CSRF_COOKIE = "pm_csrf"
CSRF_FIELD = "csrf_token"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem}"
          "label{display:block;margin:.8rem 0 .2rem}input[type=email],input[type=password],input[type=text]"
          "{width:100%;padding:.4rem}button{margin-top:1rem;padding:.4rem 1rem}.error{color:#a00}")


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>")


def _hidden(fields: Iterable[tuple[str, str]]) -> str:
    return "".join(f'<input type=hidden name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in fields)


def _error(message: str) -> str:
    return f'<p class=error role=alert>{html.escape(message)}</p>' if message else ""


def login_page(*, client_name: str, params: Iterable[tuple[str, str]], csrf: str, error: str = "") -> str:
    """Sign in to let `client_name` act for you (POSTs back to /oauth2/authorize with the request's params)."""
    return _page("Sign in to protomesh", (
        f"<p><b>{html.escape(client_name)}</b> asks to act for you.</p>{_error(error)}"
        f'<form method=post action="/oauth2/authorize">{_hidden(params)}{_hidden([(CSRF_FIELD, csrf)])}'
        f'<label for=email>Email</label><input id=email name=email type=email required>'
        "<label for=password>Password</label><input id=password name=password type=password required>"
        "<button type=submit>Sign in</button></form>"))


def device_page(*, csrf: str, user_code: str = "", client_name: str = "", error: str = "", done: str = "") -> str:
    """Enter the code a device shows, sign in, and approve or deny it."""
    if done:
        return _page("Device", f"<p>{html.escape(done)}</p>")
    asks = f"<p><b>{html.escape(client_name)}</b> asks to act for you.</p>" if client_name else ""
    return _page("Connect a device", (
        f"{asks}{_error(error)}<form method=post action=\"/oauth2/device\">{_hidden([(CSRF_FIELD, csrf)])}"
        f'<label for=user_code>Code shown by the device</label><input id=user_code name=user_code type=text required '
        f'value="{html.escape(user_code)}" autocomplete=off>'
        "<label for=email>Email</label><input id=email name=email type=email required>"
        "<label for=password>Password</label><input id=password name=password type=password required>"
        "<button type=submit name=decision value=approve>Approve</button> "
        "<button type=submit name=decision value=deny>Deny</button></form>"))


def error_page(title: str, message: str) -> str:
    """An error that must not be redirected (unknown client, unregistered redirect URI)."""
    return _page(title, f"<p class=error>{html.escape(message)}</p>")
