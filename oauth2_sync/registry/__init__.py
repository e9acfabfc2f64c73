"""Client registries: one small interface (``base.Registry``) and its adapters.

``open_registry(url)`` picks the adapter from the URL scheme:
``local:PATH`` (embedded SQLite store), ``http(s)://.../v1`` (the registry API) and,
later, ``rfc7592+http(s)://...`` (standard dynamic client registration).
"""
