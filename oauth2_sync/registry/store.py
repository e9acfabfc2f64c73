"""Moved to ``oauth2_sync.refserver``: the store is the reference server's, not an adapter's.

Kept as a re-export while importers outside the package follow the new paths
(``oauth2_sync.refserver.store`` and ``oauth2_sync.refserver.seed``).
"""

from __future__ import annotations

from oauth2_sync.refserver.bodies import validate_client_body
from oauth2_sync.refserver.records import (
    MAX_INT,
    ApiCredential,
    ApiUser,
    IssuedToken,
    PartnerRecord,
    Seed,
    TokenInfo,
    WireClient,
)
from oauth2_sync.refserver.seed import load_seed
from oauth2_sync.refserver.store import RegistryStore

__all__ = [
    "MAX_INT",
    "ApiCredential",
    "ApiUser",
    "IssuedToken",
    "PartnerRecord",
    "RegistryStore",
    "Seed",
    "TokenInfo",
    "WireClient",
    "load_seed",
    "validate_client_body",
]
