"""Which files validation reads beyond the settings' discovery (``sources.py``); the
diagnostics for what discovery left out are checked through ``validate`` in
tests/test_validation.py and tests/test_cli_validate.py."""

from __future__ import annotations

from pathlib import Path

from oauth2_sync.sources import expand_paths


def test_given_paths_are_files_as_given_and_yaml_files_under_folders_once_each(
    tmp_path: Path,
) -> None:
    (tmp_path / "team" / "deep").mkdir(parents=True)
    for name in ("team/a.yaml", "team/deep/b.yml", "team/notes.txt", "team/c.yaml.bak",
                 "other.txt"):
        (tmp_path / name).write_text("x\n")
    given = [tmp_path / "team", tmp_path / "team" / "a.yaml", tmp_path / "other.txt"]
    assert expand_paths(given) == [
        tmp_path / "other.txt", tmp_path / "team" / "a.yaml",
        tmp_path / "team" / "deep" / "b.yml",
    ]
    assert expand_paths([]) == []
