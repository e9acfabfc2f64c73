"""The HTTP session of the adapters, and the bounded body of a response.

``new_session`` is the one session factory: TLS verification always on (a CA bundle
may replace the system's), timeouts passed per request, a pool sized for apply's
parallelism, connections the request's ``Deadline`` can shut, the retry policy's
``urllib3.Retry``, and urllib3's own retry warnings kept quiet (ours go to our logger).
``read_bounded`` reads a streamed response whole, but never beyond a limit, into an
``Answer`` (the response's status, headers and body as bytes).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import requests
import requests.compat
import requests.utils
from requests.structures import CaseInsensitiveDict

from oauth2_sync.records import NamedTuple
from oauth2_sync.registry.retry import RetryPolicy
from oauth2_sync.registry.transport import WatchedAdapter

CHUNK: int = 64 * 1024

_guess_json_utf: Callable[[bytes], str | None] = requests.utils.guess_json_utf
_chardet = getattr(requests.compat, "chardet", None)
"""What requests guesses charsets with (charset_normalizer or chardet), if installed."""


def quiet_urllib3() -> None:
    """urllib3's own retry warnings never reach the default verbosity: our retry notices
    go through our logger at ``-v``. A level set by someone else is kept."""
    third_party = logging.getLogger("urllib3")
    if third_party.level == logging.NOTSET:
        third_party.setLevel(logging.ERROR)


def new_session(
    policy: RetryPolicy,
    *,
    pool_size: int = 16,
    pool_connections: int = 10,
    ca_bundle: str | Path | None = None,
    headers: Mapping[str, str] | None = None,
) -> requests.Session:
    """A session for one adapter: ``policy`` applied by urllib3, TLS verified."""
    quiet_urllib3()
    session = requests.Session()
    if ca_bundle is not None:
        session.verify = str(ca_bundle)
    session.headers.update(headers or {})
    adapter = WatchedAdapter(
        max_retries=policy.urllib3(), pool_connections=pool_connections, pool_maxsize=pool_size
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class Answer(NamedTuple):
    """A response read whole: what the adapters look at, nothing that reads more."""

    status_code: int
    reason: str
    headers: CaseInsensitiveDict[str]
    content: bytes
    encoding: str | None
    """The charset of the ``Content-Type`` (requests' reading of it)."""
    retried: bool
    """Whether urllib3 sent the request more than once before this answer."""

    def json(self) -> object:
        """The body as JSON, decoded as ``requests.Response.json`` decodes it
        (``ValueError`` when it is not JSON; ``RecursionError`` when it nests too deep)."""
        content = self.content
        if not self.encoding and len(content) > 3:
            # RFC 4627: UTF-8, -16 or -32, told apart by the first bytes.
            guessed = _guess_json_utf(content)
            if guessed is not None:
                try:
                    return json.loads(content.decode(guessed))
                except UnicodeDecodeError:
                    pass  # not what the bytes said: decode as text below
        return json.loads(self.text())

    def text(self) -> str:
        """The body as text: the declared charset, else a guessed one; undecodable bytes
        replaced (as ``requests.Response.text``)."""
        if not self.content:
            return ""
        encoding = self.encoding
        if encoding is None:
            encoding = _chardet.detect(self.content)["encoding"] if _chardet else "utf-8"
        try:
            return str(self.content, encoding or "utf-8", errors="replace")
        except (LookupError, TypeError):  # an unknown charset name
            return str(self.content, errors="replace")


class TooLargeError(Exception):
    """The response is larger than the limit (its body was not read)."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(response.status_code)
        self.status_code = response.status_code
        self.reason = response.reason


def read_bounded(response: requests.Response, limit: int) -> Answer:
    """Read a streamed ``response`` whole (``TooLargeError`` beyond ``limit`` bytes after
    decompression, the connection then closed)."""
    chunks: list[bytes] = []
    try:
        declared = response.headers.get("Content-Length", "")
        size = int(declared) if declared.isdigit() else 0
        if size <= limit:
            size = 0
            for chunk in response.iter_content(CHUNK):
                size += len(chunk)
                if size > limit:
                    break
                chunks.append(chunk)
    except BaseException:
        response.close()
        raise
    if size > limit:
        response.close()
        raise TooLargeError(response)
    history = getattr(getattr(response.raw, "retries", None), "history", None)
    return Answer(
        response.status_code, response.reason, response.headers, b"".join(chunks),
        response.encoding, retried=bool(history),
    )
