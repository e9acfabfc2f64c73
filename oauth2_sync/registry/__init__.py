"""Client registries: one small interface (``base.Registry``) and its adapters.

``open_registry(settings)`` picks the adapter from the URL scheme:
``local:PATH`` (embedded SQLite store), ``http(s)://.../v1`` (the registry API) and
``rfc7592+http(s)://...`` (standard dynamic client registration). Adapters are
imported only when chosen, so commands that never touch a registry stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from oauth2_sync.errors import UsageError

if TYPE_CHECKING:
    from oauth2_sync.registry.base import Registry
    from oauth2_sync.settings import Settings


def open_registry(settings: Settings) -> Registry:
    """The adapter for ``settings.registry.url``; raises ``UsageError`` for an unknown scheme."""
    url = settings.registry.url
    if url.startswith("local:"):
        from oauth2_sync.registry.local import LocalRegistry

        return LocalRegistry.from_settings(settings)
    if url.startswith("rfc7592+"):
        from oauth2_sync.registry.rfc7592 import Rfc7592Registry

        return Rfc7592Registry.from_settings(settings)
    if url.startswith(("http://", "https://")):
        from oauth2_sync.registry.http import HttpRegistry

        return HttpRegistry.from_settings(settings)
    raise UsageError(f"unknown registry URL scheme: {url}")
