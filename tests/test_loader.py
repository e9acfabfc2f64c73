"""The strict YAML loader: what it refuses, where it points, what it keeps."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from oauth2_sync.errors import InputError
from oauth2_sync.loader import (
    MAX_BYTES,
    DataPath,
    load_bytes,
    load_file,
    locate_in,
)


def refusal(raw: bytes) -> str:
    with pytest.raises(InputError) as info:
        load_bytes(raw, "f.yaml")
    assert len(info.value.diagnostics) == 1
    return str(info.value.diagnostics[0])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            b"a: 1\nb:\n  c: 1\n  c: 2\n",
            "f.yaml:4:3: error: [duplicate-key] duplicate key 'c' (first defined at line 3, column 3)",
        ),
        (b"a: &x 1\n", "f.yaml:1:4: error: [anchor] anchors (&x) are not allowed"),
        (b"a: [*x]\n", "f.yaml:1:5: error: [anchor] aliases (*x) are not allowed"),
        (
            b"a:\n  b: 1\n\t\n",
            "f.yaml:3:1: error: [tab-indent] tabs are not allowed for indentation",
        ),
        (
            b"a: 1\n  \tb: 2\n",
            "f.yaml:2:3: error: [tab-indent] tabs are not allowed for indentation",
        ),
        (b"a: 1\nb: \xff\n", "f.yaml:2:4: error: [encoding] file is not valid UTF-8 (byte 0xff)"),
        (b"<<: {a: 1}\n", "f.yaml:1:1: error: [merge-key] merge keys (<<) are not allowed"),
        (
            b"? [1]\n: x\n",
            "f.yaml:1:3: error: [yaml-key] mapping keys must be strings, not a collection",
        ),
        (
            b"a: !!python/object:os.system x\n",
            "f.yaml:1:4: error: [yaml-syntax] explicit tags (!!python/object:os.system) are "
            "not allowed: write the value itself (quoted, to mean text)",
        ),
        (
            b"a: \x1b[31m\n",
            "f.yaml:1:4: error: [yaml-syntax] control character U+001B is not allowed",
        ),
        (
            b"[" * 100_000 + b"]" * 100_000,
            "f.yaml:1:1001: error: [yaml-depth] nesting deeper than 1000 levels",
        ),
        (
            b"a: 1\nb: 2001-13-45\n",
            "f.yaml:2:4: error: [yaml-syntax] '2001-13-45' is not a valid timestamp value "
            "(month must be in 1..12)",
        ),
        (b"a: !!bool maybe\n", "f.yaml:1:4: error: [yaml-syntax] explicit tags (!!bool) are "
         "not allowed: write the value itself (quoted, to mean text)"),
        (
            b"a: !!set x\n",
            "f.yaml:1:4: error: [yaml-syntax] explicit tags (!!set) are not allowed: write the "
            "value itself (quoted, to mean text)",
        ),
    ],
    ids=[
        "duplicate-key",
        "anchor",
        "alias",
        "tab-line",
        "tab-after-spaces",
        "non-utf8",
        "merge-key",
        "non-string-key",
        "python-tag",
        "escape-sequence",
        "depth-100k-would-segfault-libyaml",
        "impossible-date",
        "tagged-bool",
        "set-of-a-scalar",
    ],
)
def test_refuses(raw: bytes, expected: str) -> None:
    assert refusal(raw) == expected


def test_refuses_files_over_one_mib(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# " + b"x" * MAX_BYTES + b"\n")
    with pytest.raises(InputError) as info:
        load_file(path, "big.yaml")
    assert str(info.value) == "big.yaml:1:1: error: [file-size] file is larger than 1024 KiB"


def test_accepts_a_file_of_exactly_one_mib(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_bytes(b"a: 1\n#" + b"x" * (MAX_BYTES - 7) + b"\n")
    assert load_file(path).data == {"a": 1}


def test_accepts_utf8_bom_and_keeps_columns() -> None:
    doc = load_bytes("\ufeffname: Café\nlist: [a, b]\n".encode(), "f.yaml")
    assert doc.data == {"name": "Café", "list": ["a", "b"]}
    assert doc.locate(("list", 1)) == (2, 11)


def test_missing_file_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_file(tmp_path / "nope.yaml", "nope.yaml")
    assert str(info.value) == "nope.yaml:1:1: error: [file] No such file or directory"


def test_tabs_inside_values_are_fine() -> None:
    assert load_bytes(b'a: "x\ty"\n', "f.yaml").data == {"a": "x\ty"}


def test_ampersand_in_a_value_is_not_an_anchor() -> None:
    assert load_bytes(b"u: https://x.example/?a=1&b=2\n", "f.yaml").data == {
        "u": "https://x.example/?a=1&b=2"
    }


@pytest.mark.parametrize(
    ("path", "key", "expected"),
    [
        (("clients", 0, "name"), False, (3, 11)),
        (("clients", 0, "name"), True, (3, 5)),
        (("clients", 1), False, (4, 5)),
        (("clients", 5, "name"), False, (2, 3)),
        (("missing",), False, (1, 1)),
    ],
)
def test_locate(path: tuple[str | int, ...], key: bool, expected: tuple[int, int]) -> None:
    doc = load_bytes(b"clients:\n  - client_id: a\n    name: A\n  - client_id: b\n", "f.yaml")
    assert doc.locate(path, key=key) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            b"a: yes\n",
            "f.yaml:1:4: error: [yaml-1.1] 'yes' is a YAML 1.1 boolean (true): write true, "
            "or quote it to mean the text",
        ),
        (
            b"a: [On, NO]\n",
            "f.yaml:1:5: error: [yaml-1.1] 'On' is a YAML 1.1 boolean (true): write true, "
            "or quote it to mean the text",
        ),
        (
            b"off: 1\n",
            "f.yaml:1:1: error: [yaml-1.1] 'off' is a YAML 1.1 boolean (false): write false, "
            "or quote it to mean the text",
        ),
        (
            b"a: 1:30:00\n",
            "f.yaml:1:4: error: [yaml-1.1] '1:30:00' is a YAML 1.1 base-60 number (5400): "
            "write 5400, or quote it to mean the text",
        ),
        (
            b"a: -1:30.5\n",
            "f.yaml:1:4: error: [yaml-1.1] '-1:30.5' is a YAML 1.1 base-60 number (-90.5): "
            "write -90.5, or quote it to mean the text",
        ),
        (
            b"a: 0b101\n",
            "f.yaml:1:4: error: [yaml-1.1] '0b101' is a YAML 1.1 binary number (5): write 5, "
            "or quote it to mean the text",
        ),
        (
            b"a: 1_000\n",
            "f.yaml:1:4: error: [yaml-1.1] '1_000' is a YAML 1.1 number with '_' separators "
            "(1000): write 1000, or quote it to mean the text",
        ),
    ],
    ids=["yes", "on-in-flow", "off-as-key", "base-60", "base-60-float", "binary", "underscore"],
)
def test_yaml_1_1_only_scalars_are_refused(raw: bytes, expected: str) -> None:
    assert refusal(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"a: true\nb: FALSE\nc: True\n", {"a": True, "b": False, "c": True}),
        (b"a: 90\nb: -1\nc: 0\nd: 0x1F\ne: 1.5\n", {"a": 90, "b": -1, "c": 0, "d": 31, "e": 1.5}),
        (
            b"a: 'yes'\nb: \"1:30\"\nc: yes please\nd: n1\ne: '0600'\nf: N\n",
            {"a": "yes", "b": "1:30", "c": "yes please", "d": "n1", "e": "0600", "f": "N"},
        ),
    ],
    ids=["yaml-1.2-booleans", "yaml-1.2-numbers", "quoted-or-longer-text"],
)
def test_what_yaml_1_1_and_1_2_read_alike_is_kept(raw: bytes, expected: object) -> None:
    assert load_bytes(raw, "f.yaml").data == expected


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.integers(1, 10**6), st.integers(0, 59), st.sampled_from(["", "-", "+"]))
def test_every_base_60_number_is_refused_and_every_decimal_kept(
    hours: int, minutes: int, sign: str
) -> None:
    value = (hours * 60 + minutes) * (-1 if sign == "-" else 1)
    assert refusal(f"a: {sign}{hours}:{minutes:02d}\n".encode()) == (
        f"f.yaml:1:4: error: [yaml-1.1] '{sign}{hours}:{minutes:02d}' is a YAML 1.1 base-60 "
        f"number ({value}): write {value}, or quote it to mean the text"
    )
    assert load_bytes(f"a: {sign}{abs(value)}\n".encode(), "f.yaml").data == {"a": value}


_SCALARS = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=8),
    st.integers(-5, 10**6), st.booleans(), st.none(),
)
_KEYS = st.sampled_from(["clients", "client_id", "name", "redirect_uris", "a", "b", "é"])
_TREES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=4)
    ),
    max_leaves=20,
)


def _paths(data: object, prefix: DataPath = ()) -> Iterator[DataPath]:
    """Every path into ``data``, and one past each collection that does not exist."""
    yield prefix
    if isinstance(data, dict):
        yield (*prefix, "missing")
        for key, value in data.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(data, list):
        yield (*prefix, len(data))
        for index, value in enumerate(data):
            yield from _paths(value, (*prefix, index))


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(_KEYS, _TREES, min_size=1, max_size=4),
    st.sampled_from([None, True, False]),
    st.integers(2, 5),
    st.booleans(),
)
def test_positions_from_the_load_match_a_second_compose(
    data: dict[str, object], flow: bool | None, indent: int, released: bool
) -> None:
    """Positions come from the node tree of the one load (or, once the data is
    released, from a fresh parse); both are where composing the text again points."""
    text = yaml.safe_dump(data, default_flow_style=flow, indent=indent, sort_keys=False,
                          allow_unicode=True)
    try:
        doc = load_bytes(text.encode(), "f.yaml")
    except InputError:
        return  # refused text (a YAML 1.1 scalar dumped plain): no positions to compare
    if released:
        doc.release_data()
    reference = yaml.compose(text, Loader=yaml.CSafeLoader)
    for path in _paths(data):
        for key in (False, True):
            assert doc.locate(path, key=key) == locate_in(reference, path, key=key), path
