from __future__ import annotations

from oauth2_sync.cli import main

main()
