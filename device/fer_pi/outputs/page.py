"""The room's page on the status endpoint: one HTML file with its style and script inline
(no external asset: it works on a LAN with no internet), and the sign-in that stands in for
a bearer token where a browser cannot send one.

Signing in is a form that POSTs the token once; the reply sets a cookie that is an HMAC of
the token (never the token itself), HttpOnly and SameSite=Strict. A form rather than a
``?token=`` link because a token in a URL stays in the browser's history, in synced
bookmarks and in any proxy's log; a cookie derived from the token keeps working across
fer-pi's restarts and stops working when the token file changes.

The Content-Security-Policy allows the page's own script (by hash) and style, requests to
its own origin only, and no image of any kind: the page cannot show a picture even if
something tried to put one in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
from functools import cache
from importlib import resources

from fer_pi.core.colours import EMOTION_COLOURS, css_colour

COOKIE = "fer_pi_session"
COOKIE_MAX_AGE_S = 365 * 24 * 3600
HTML_TYPE = "text/html; charset=utf-8"

LOGIN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>fer-pi: sign in</title>
<style>body{margin:0;font:18px/1.4 system-ui,sans-serif;background:#121218;color:#ebebeb;
display:grid;place-items:center;min-height:100vh}form{background:#1e1e28;padding:24px;
border-radius:8px;display:grid;gap:12px;width:min(360px,90vw)}input{font:inherit;padding:8px}
p{margin:0;color:#acacb8}.bad{color:#ff8a94}</style></head>
<body><form method="post" action="login"><h1 style="margin:0;font-size:22px">fer-pi</h1>
<p>This board's page needs its status token (the file named by status.token_file).</p>
{message}<input type="password" name="token" autocomplete="current-password"
aria-label="token" autofocus required><input type="submit" value="Sign in"></form></body>
</html>
"""


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _policy(page: str) -> str:
    scripts = " ".join(_hash(s) for s in re.findall(r"<script>(.*?)</script>", page, re.S))
    return ("default-src 'none'; connect-src 'self'; img-src 'none'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'; "
            f"script-src {scripts or repr('none')}; "
            "style-src 'unsafe-inline'")


@cache
def room_page() -> tuple[str, dict[str, str]]:
    """The page and its headers. Styles stay 'unsafe-inline' (a style cannot fetch a
    picture: img-src 'none' covers CSS images too); scripts run only by their hash."""
    text = resources.files("fer_pi.outputs").joinpath("room.html").read_text(encoding="utf-8")
    colours = {label: css_colour(label) for label in EMOTION_COLOURS}
    text = text.replace("/*COLOURS*/", json.dumps(colours))
    return text, headers(text)


def login_page(message: str = "") -> tuple[str, dict[str, str]]:
    note = f'<p class="bad">{html.escape(message)}</p>' if message else ""
    text = LOGIN.replace("{message}", note)
    return text, headers(text)


def headers(page: str) -> dict[str, str]:
    return {"Content-Security-Policy": _policy(page), "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


def session_value(token: bytes) -> str:
    """What the cookie holds: an HMAC of the token, so the cookie cannot be turned back
    into the token (which also reads /metrics) and changes when the token does."""
    return hmac.new(token, b"fer-pi room page session v1", hashlib.sha256).hexdigest()


def session_cookie(token: bytes) -> str:
    return (f"{COOKIE}={session_value(token)}; Max-Age={COOKIE_MAX_AGE_S}; Path=/; HttpOnly; "
            "SameSite=Strict")


def cookie_value(header: str) -> str:
    """The session cookie of a Cookie header, '' without one."""
    for part in header.split(";"):
        name, _eq, value = part.strip().partition("=")
        if name == COOKIE:
            return value.strip()
    return ""
