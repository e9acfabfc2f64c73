"""The reference registry: the server side of the wire, apart from the adapters.

``records`` (what the store holds), ``db`` (SQLite connections and schema),
``tokens`` and ``partners`` (API credentials, tokens, seeding), ``store`` (clients),
``bodies`` (request bodies against the shipped OpenAPI components), ``seed`` (seed
files), ``app`` (the API's behaviour) and ``server`` (HTTP plumbing, ``registry
serve``). The ``local:`` adapter uses ``store`` in-process; nothing here imports an
adapter.
"""
