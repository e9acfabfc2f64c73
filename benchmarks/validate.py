"""Validate N generated client files, beside the floor: yaml.CSafeLoader on the same files.

python benchmarks/validate.py [N]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))

from common import best_of, write_repository

from oauth2_sync.settings import load_settings
from oauth2_sync.validation import validate


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        settings_path = write_repository(Path(tmp), count)
        settings = load_settings(settings_path)
        files = settings.client_files()

        def floor() -> int:
            n = 0
            for path in files:
                with path.open("rb") as stream:
                    n += len(yaml.load(stream, Loader=yaml.CSafeLoader)["clients"])
            return n

        def ours() -> int:
            result = validate(settings)
            assert not result.errors, result.errors[:3]
            return len(result.clients)

        floor_s, n_floor = best_of(3, floor)
        ours_s, n_ours = best_of(3, ours)
        assert n_floor == n_ours == count
    print(f"files: {count}")
    print(f"floor (CSafeLoader):   {floor_s:7.3f} s  {floor_s / count * 1000:.3f} ms/file")
    print(f"oauth2-sync validate:  {ours_s:7.3f} s  {ours_s / count * 1000:.3f} ms/file")
    print(f"ratio: {ours_s / floor_s:.2f}x")


if __name__ == "__main__":
    main()
