"""Fast path: redirect URIs that are acceptable for sure, recognised without parsing.

Readable reference: ``redirects.redirect_uri_problem`` without this shortcut, that is
the rules of ``redirects._parsed_uri_problem`` (``urlsplit`` and ``hostname``, which
were a tenth of the rules' time; 13% of a plan of 10,000 clients:
benchmarks/fastpaths.py). A plain ``https://host[:port][/path or ?query]``
with no fragment, user information, wildcard, comma, backslash, space or control
character is what most files hold, and native apps' ``http://127.0.0.1[:port]/path``
and ``com.example.app:/path``; anything else takes the full path.
tests/test_fast.py checks that every URI accepted here is accepted by an independent
reading of the rules as well.
"""

from __future__ import annotations

import re

_PLAIN_HTTPS = re.compile(r"https://[A-Za-z0-9.-]+(?::[0-9]*)?(?:[/?][^\s\x00-\x1f\x7f#*,\[\]@\\]*)?")
_PLAIN_LOOPBACK = re.compile(r"http://127\.0\.0\.1(?::[0-9]*)?(?:[/?][^\s\x00-\x1f\x7f#*,\[\]@\\]*)?")
"""A native app's loopback redirect on 127.0.0.1 (RFC 8252 §7.3), the usual spelling."""
_PLAIN_APP = re.compile(
    r"[a-z][a-z0-9+-]*(?:\.[a-z0-9+-]+)+:/(?:[^/\s\x00-\x1f\x7f#*,\[\]@%\\][^\s\x00-\x1f\x7f#*,\[\]@%\\]*)?"
)
"""A native app's private-use scheme (RFC 8252 §7.1), reversed domain, one ``/``: no host."""


def plainly_valid(uri: str) -> bool:
    """True only if ``uri`` is a redirect URI the rules accept (False: not known)."""
    return (
        _PLAIN_HTTPS.fullmatch(uri) is not None
        # Native apps (a third of the mix's URIs) took the parsing path: #14.
        or _PLAIN_LOOPBACK.fullmatch(uri) is not None
        or _PLAIN_APP.fullmatch(uri) is not None
    )
