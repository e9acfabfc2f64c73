"""The bearer token of the HTTP adapter: fetched at first use, renewed when refused.

``TokenSource`` asks the token endpoint (client_credentials or password grant, HTTP
Basic client authentication) through a ``fetch`` function the adapter gives it (the
adapter owns the transport: deadlines, retries, the circuit); on renewal it uses the
refresh token when there is one, and authenticates again when that fails. Threads
share one token: a renewal by one thread is seen by the others.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Literal
from urllib.parse import quote

import requests

from oauth2_sync.errors import RegistryError
from oauth2_sync.records import NamedTuple
from oauth2_sync.registry.wire import TokenResponse, token_from_wire
from oauth2_sync.secret import Secret

logger = logging.getLogger(__name__)

GrantType = Literal["client_credentials", "password"]


class Credentials(NamedTuple):
    """Who the adapter authenticates as. Secrets stay wrapped until sent."""

    client_id: str
    client_secret: Secret
    grant_type: GrantType = "client_credentials"
    username: str | None = None
    password: Secret | None = None

    def basic(self) -> str:
        """The ``Authorization`` value of HTTP Basic client authentication."""
        # RFC 6749 2.3.1: id and secret are form-encoded before the Basic encoding.
        pair = f"{quote(self.client_id, safe='')}:{quote(self.client_secret.reveal(), safe='')}"
        return "Basic " + base64.b64encode(pair.encode()).decode("ascii")

    def grant(self) -> dict[str, str]:
        """The form of a token request for this credential's grant."""
        if self.grant_type == "password":
            assert self.username is not None and self.password is not None
            return {
                "grant_type": "password",
                "username": self.username,
                "password": self.password.reveal(),
            }
        return {"grant_type": "client_credentials"}


class AuthorizationHeader(requests.auth.AuthBase):
    """Sets ``Authorization``. An auth object rather than a header: requests then never
    swaps in ``~/.netrc``."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = self.value
        return r


Fetch = Callable[[Mapping[str, str], AuthorizationHeader], object]
"""Sends a token request (form, client authentication) and returns the JSON body of a
200 answer; raises ``RegistryError`` otherwise."""


class TokenSource:
    """The current access token, fetched and renewed on demand."""

    def __init__(self, credentials: Credentials, fetch: Fetch, where: str) -> None:
        self.credentials = credentials
        self._fetch = fetch
        self._where = where
        self._lock = threading.Lock()
        self._access: Secret | None = None
        self._refresh: Secret | None = None
        self.scope: str | None = None
        """The scope the last token was granted, when the endpoint said."""

    def bearer(self) -> Secret:
        """The access token, fetched first if there is none."""
        with self._lock:
            if self._access is None:
                self._get(self.credentials.grant())
            assert self._access is not None
            return self._access

    def renew(self, stale: Secret) -> None:
        """Replace ``stale`` (refused by the registry), unless another thread did."""
        with self._lock:
            if self._access is not None and self._access != stale:
                return
            self._access = None
            if self._refresh is not None:
                refresh, self._refresh = self._refresh, None
                try:
                    self._get({"grant_type": "refresh_token", "refresh_token": refresh.reveal()})
                    return
                except RegistryError as exc:
                    logger.info("refreshing the token failed (%s); authenticating again", exc)
            self._get(self.credentials.grant())

    def _get(self, form: Mapping[str, str]) -> None:
        body = self._fetch(form, AuthorizationHeader(self.credentials.basic()))
        token: TokenResponse | None = token_from_wire(body)
        if token is None:
            raise RegistryError(f"POST {self._where}: the token endpoint sent no access_token")
        self._access = Secret(token["access_token"])
        refresh = token.get("refresh_token")
        self._refresh = Secret(refresh) if refresh else None
        self.scope = token.get("scope")
        logger.debug("got a token (scope %s)", self.scope)
