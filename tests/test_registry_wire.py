"""registry/wire.py: the API's JSON shapes to and from the normal form."""

from __future__ import annotations

import pytest

from oauth2_sync.registry.wire import join_redirects, split_redirects


@pytest.mark.parametrize(
    ("wire", "uris"),
    [
        (None, ()),
        ("", ()),
        ("  ", ()),
        ("https://a.example/cb", ("https://a.example/cb",)),
        (" https://a.example/cb ", ("https://a.example/cb",)),
        ("https://b.example/cb, https://a.example/cb", ("https://a.example/cb", "https://b.example/cb")),
        ("https://a.example/cb,https://a.example/cb", ("https://a.example/cb",)),
        (",", ()),
        (" , https://a.example/cb,", ("https://a.example/cb",)),
    ],
)
def test_split_redirects_trims_drops_empties_sorts_and_dedupes(
    wire: str | None, uris: tuple[str, ...]
) -> None:
    assert split_redirects(wire) == uris


def test_join_is_the_inverse_of_split_on_the_normal_form() -> None:
    uris = ("https://b.example/cb", "https://a.example/cb")
    assert join_redirects(uris) == "https://a.example/cb,https://b.example/cb"
    assert split_redirects(join_redirects(uris)) == tuple(sorted(uris))
