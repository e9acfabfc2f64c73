"""One exchange with the reference server: the request a handler reads, the response
it returns, and the error that ends a request early."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

from oauth2_sync import etags
from oauth2_sync.errors import (
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
    RegistryError,
)

logger = logging.getLogger(__name__)

MAX_BODY: Final = 1024 * 1024


@dataclass(slots=True)
class Response:
    """What a handler answers: status, JSON body (``None``: none) and headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class HttpError(Exception):
    """Ends a request with an error body ``{error, message, fields?}``."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        fields: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        close: bool = False,
    ) -> None:
        super().__init__(message)
        body: dict[str, Any] = {"error": error, "message": message}
        if fields:
            body["fields"] = dict(fields)
        self.response = Response(status, body, dict(headers or {}))
        self.close = close



def registry_error(exc: RegistryError) -> Response:
    """The error response for a store error (400, 404, 409, 412, else 500)."""
    if isinstance(exc, NotFoundError):
        status, error = 404, "not_found"
    elif isinstance(exc, ConflictError):
        status, error = 409, "conflict"
    elif isinstance(exc, PreconditionFailedError):
        status, error = 412, "precondition_failed"
    elif exc.status == 400:
        status, error = 400, "invalid_client_metadata"
    else:
        logger.error("store error: %s", exc)
        status, error = 500, "server_error"
    body: dict[str, Any] = {"error": error, "message": str(exc)}
    if exc.fields:
        body["fields"] = exc.fields
    return Response(status, body)


def int_param(query: Mapping[str, list[str]], name: str, low: int, high: int) -> int | None:
    """A query parameter as an integer from ``low`` to ``high``; ``None`` when absent."""
    values = query.get(name)
    if not values:
        return None
    raw = values[-1]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or not low <= int(raw) <= high:
        raise HttpError(
            400, "invalid_request", f"{name} must be an integer from {low} to {high}",
            fields={name: f"must be an integer from {low} to {high}"},
        )
    return int(raw)


class Request:
    """What a handler needs of one request (header names in lower case)."""

    __slots__ = ("body", "close", "headers", "method", "path", "query", "segments")

    def __init__(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> None:
        parts = urlsplit(target)
        self.method = method
        self.path = parts.path
        self.segments = [unquote(s) for s in parts.path.strip("/").split("/")]
        self.query = parse_qs(parts.query, keep_blank_values=True)
        self.headers = headers
        self.body = body
        self.close = False

    def json(self) -> Any:
        """The body as JSON; 400 when it is not."""
        try:
            return json.loads(self.body.decode("utf-8"), parse_constant=_refuse_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            reason = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else "not valid JSON"
            raise HttpError(400, "invalid_request", f"the body is {reason}") from exc

    def if_match(self) -> frozenset[str] | None:
        """The versions ``If-Match`` accepts; ``None`` when absent or ``*``."""
        return etags.parse_if_match(self.headers.get("if-match"))


def too_large() -> HttpError:
    """The 413 for a body over ``MAX_BODY``."""
    return HttpError(413, "payload_too_large", f"the body must be at most {MAX_BODY} bytes")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


