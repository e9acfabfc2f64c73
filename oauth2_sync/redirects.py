"""The redirect URI rules (RFC 6749 §3.1.2, RFC 8252 §7): what a client file may list."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from oauth2_sync.fast.redirect import plainly_valid
from oauth2_sync.urls import is_loopback

_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")


def redirect_uri_problem(uri: str) -> str | None:
    """Why a redirect URI is not acceptable (RFC 6749 §3.1.2, RFC 8252 §7), or ``None``."""
    if plainly_valid(uri):  # most URIs, without parsing (oauth2_sync.fast.redirect)
        return None
    return _parsed_uri_problem(uri)


def _character_problem(uri: str) -> str | None:
    """Characters a redirect URI must not hold, wherever they are."""
    if "," in uri:
        return "contains a comma (the registry stores redirect URIs comma-separated)"
    if "*" in uri:
        return "contains a wildcard; redirect URIs must match exactly"
    if _SPACE_OR_CONTROL.search(uri):
        return "contains whitespace or a control character"
    if "\\" in uri:
        # Browsers read "\" as "/" in http(s) URIs, urlsplit and the registry do not: the
        # host a user is sent to would not be the host validated here.
        return "contains a backslash, which browsers read as '/'"
    return None


def _parsed_uri_problem(uri: str) -> str | None:
    problem = _character_problem(uri)
    if problem is not None:
        return problem
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:
        return "is not a valid URI"
    if not parts.scheme:
        return "is not absolute (it needs a scheme such as https://)"
    if "@" in parts.netloc:
        # https://acme.example@evil.example/cb sends users to evil.example.
        return f"has user information before '@' (its host is {host!r})"
    if "%" in parts.netloc:
        return "has a percent-encoded host, which browsers decode before connecting"
    if "#" in uri:
        return "has a fragment (#...), which RFC 6749 §3.1.2 forbids"
    if parts.scheme == "https":
        return None if host else "has no host"
    if parts.scheme == "http":
        if not host:
            return "has no host"
        return (
            None
            if is_loopback(host)
            else ("uses plain http for a host that is not a loopback address (use https)")
        )
    if "." in parts.scheme and not parts.netloc.startswith("/"):
        # RFC 8252 §7.1: a native app's private-use scheme is a reversed domain name.
        return None
    return f"uses the scheme '{parts.scheme}'; use https, http on loopback or a reverse-domain app scheme"
