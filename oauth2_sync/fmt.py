"""``fmt``: client files in normal form, everything else kept byte for byte.

Normal form, as ``fmt`` writes it: the keys of every client in schema order, and the
sets (``scopes``, ``grant_types``, ``redirect_uris``) sorted. Nothing else changes:
values keep the user's spelling (``3600`` stays ``3600``, ``1h`` stays ``1h``, an explicit
``null`` stays), clients keep their order, and comments, blank lines, quoting, flow or
block style and indentation are kept.

PyYAML cannot dump comments, and ruamel.yaml's round trip re-emits the whole file (it
turns ``key: null`` into ``key:`` and re-indents), so neither is used to write. ``fmt``
edits the source text instead: PyYAML's composer gives the exact position of every key,
value and list item, and a change is a permutation of those pieces of text. A comment
on the lines before a key or a list item moves with it; a comment at the end of a line
moves with that line. A file already in normal form is never rewritten, and the check
for it uses the fast C loader on plain data, so ``fmt --check`` costs about as much as
loading the files.

Every rewrite is verified before it is written: the new text is loaded again and must
hold the same data, now in normal form.
"""

from __future__ import annotations

import difflib
import logging
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from oauth2_sync.errors import Diagnostic, InputError, Oauth2SyncError
from oauth2_sync.files import open_regular
from oauth2_sync.loader import display_path, load_bytes
from oauth2_sync.model import FIELD_NAMES

logger = logging.getLogger(__name__)

SET_FIELDS: tuple[str, ...] = ("scopes", "grant_types", "redirect_uris")
"""Client fields that are sets: ``fmt`` sorts them."""
_RANK = {name: rank for rank, name in enumerate(FIELD_NAMES)}
_BOM = "\ufeff"


@dataclass(frozen=True, slots=True)
class FileResult:
    """One file looked at by ``fmt``: its name, and its text before and in normal form."""

    path: Path
    display: str
    before: str
    after: str

    @property
    def changed(self) -> bool:
        """Whether the file is not in normal form."""
        return self.before != self.after

    def diff(self) -> str:
        """A unified diff from the file to its normal form (empty when unchanged)."""
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile=f"a/{self.display}",
                tofile=f"b/{self.display}",
            )
        )


@dataclass(frozen=True, slots=True)
class FmtReport:
    """Every file looked at, and the findings for the files that could not be read."""

    files: tuple[FileResult, ...]
    diagnostics: tuple[Diagnostic, ...]

    @property
    def changed(self) -> tuple[FileResult, ...]:
        """The files not in normal form."""
        return tuple(f for f in self.files if f.changed)


def format_paths(paths: Sequence[Path], *, write: bool) -> FmtReport:
    """Bring the files at ``paths`` into normal form; rewrite them only with ``write``.

    A file that cannot be loaded (bad YAML, duplicate keys, ...) is reported as a
    diagnostic and left alone; the others are still formatted.
    """
    results: list[FileResult] = []
    diagnostics: list[Diagnostic] = []
    for path in paths:
        display = display_path(path)
        try:
            raw = _read(path, display)
            result = format_bytes(raw, display, path)
        except InputError as exc:
            diagnostics.extend(exc.diagnostics)
            continue
        if write and result.changed:
            try:
                _write_atomically(path, result.after)
            except OSError as exc:
                # Named here, not by a temporary file's name; the other files go on.
                diagnostics.append(Diagnostic(
                    display, 1, 1, "error", "file",
                    f"cannot rewrite the file: {exc.strerror or exc}; check that the file "
                    "and its folder are writable",
                ))
                continue
            logger.info("formatted %s", display)
        results.append(result)
    return FmtReport(tuple(results), tuple(sorted(diagnostics)))


def format_bytes(raw: bytes, display: str, path: Path | None = None) -> FileResult:
    """The normal form of one client file's bytes; ``InputError`` if it does not load."""
    doc = load_bytes(raw, display)
    # The loader decoded and checked the bytes; keep a byte-order mark if there was one.
    bom = _BOM if raw.startswith(b"\xef\xbb\xbf") else ""
    before = bom + doc.text
    if is_normal(doc.data):
        return FileResult(path or Path(display), display, before, before)
    after = bom + format_text(doc.text, doc.data, display)
    return FileResult(path or Path(display), display, before, after)


def is_normal(data: Any) -> bool:
    """Whether loaded client-file data is in normal form (key order and sorted sets)."""
    for entry in _entries(data):
        keys = list(entry)
        if keys != sorted(keys, key=_rank):
            return False
        for name in SET_FIELDS:
            values = entry.get(name)
            if isinstance(values, list) and _strings(values) and values != sorted(values):
                return False
    return True


def format_text(text: str, data: Any, display: str) -> str:
    """Rewrite ``text`` (whose loaded data is ``data``) into normal form.

    Sets are sorted first, then keys reordered, each pass on freshly composed nodes so
    that positions are exact. Raises ``Oauth2SyncError`` (and writes nothing) if the
    result would not hold the same data in normal form.
    """
    text = _apply(text, _set_edits(text))
    text = _apply(text, _key_edits(text, display))
    _verify(text, data, display)
    return text


# --- what to change ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Edit:
    start: int
    end: int
    text: str


def _client_nodes(text: str) -> Iterable[yaml.MappingNode]:
    root = yaml.compose(text, Loader=yaml.CSafeLoader)
    if not isinstance(root, yaml.MappingNode):
        return
    for key, value in root.value:
        if key.value == "clients" and isinstance(value, yaml.SequenceNode):
            yield from (n for n in value.value if isinstance(n, yaml.MappingNode))


def _set_edits(text: str) -> list[_Edit]:
    lines = _Lines(text)
    edits: list[_Edit] = []
    for client in _client_nodes(text):
        for key, value in client.value:
            if key.value not in SET_FIELDS or not isinstance(value, yaml.SequenceNode):
                continue
            items = value.value
            if not all(isinstance(i, yaml.ScalarNode) and i.tag == _STR for i in items):
                continue
            order = sorted(range(len(items)), key=lambda i: items[i].value)
            if order == list(range(len(items))):
                continue
            if value.flow_style:
                edits.append(_permute_in_place(text, items, order))
            else:
                # Comments on the lines before an item describe it: they move with it.
                first = key.end_mark.line + 1
                edits.append(lines.permute(_chunks(first, items), order))
    return edits


def _key_edits(text: str, display: str) -> list[_Edit]:
    lines = _Lines(text)
    edits: list[_Edit] = []
    for client in _client_nodes(text):
        keys = [k.value for k, _ in client.value]
        order = sorted(range(len(keys)), key=lambda i: _rank(keys[i]))
        if order == list(range(len(keys))):
            continue
        if client.flow_style:
            pairs = [(k, v) for k, v in client.value]
            edits.append(_permute_pairs_in_place(text, pairs, order))
            continue
        first_key = client.value[0][0]
        prefix = lines.line(first_key.start_mark.line)[: first_key.start_mark.column]
        if prefix.strip(" -") or len(prefix) != first_key.start_mark.column:
            raise _cannot(display, first_key, "its first key does not start the entry's line")
        chunks = _chunks(first_key.start_mark.line, [v for _, v in client.value])
        key_lines = [k.start_mark.line for k, _ in client.value]
        edits.append(lines.permute(chunks, order, first_prefix=prefix, key_lines=key_lines))
    return edits


_STR = "tag:yaml.org,2002:str"


def _rank(key: Any) -> int:
    return _RANK.get(key, len(_RANK)) if isinstance(key, str) else len(_RANK)


def _entries(data: Any) -> Iterable[dict[str, Any]]:
    if isinstance(data, dict) and isinstance(data.get("clients"), list):
        yield from (e for e in data["clients"] if isinstance(e, dict))


def _strings(values: Any) -> bool:
    return isinstance(values, list) and all(isinstance(v, str) for v in values)


def _content_end_line(node: yaml.Node) -> int:
    """The last line holding ``node``'s own text (block collections end at their last child)."""
    if isinstance(node, yaml.SequenceNode | yaml.MappingNode) and not node.flow_style:
        last = node.value[-1]
        return _content_end_line(last[1] if isinstance(last, tuple) else last)
    mark = node.end_mark
    # A block scalar ends at the start of the line after it.
    return mark.line if mark.column > 0 else mark.line - 1


def _chunks(first_line: int, nodes: Sequence[yaml.Node]) -> list[tuple[int, int]]:
    """Line ranges (inclusive) of consecutive pieces: each ends where its node's text ends."""
    chunks: list[tuple[int, int]] = []
    start = first_line
    for node in nodes:
        end = _content_end_line(node)
        chunks.append((start, end))
        start = end + 1
    return chunks


def _permute_in_place(text: str, items: Sequence[yaml.Node], order: Sequence[int]) -> _Edit:
    """Reorder the items of a flow collection, keeping what lies between them in place."""
    spans = [(i.start_mark.index, i.end_mark.index) for i in items]
    return _permute_spans(text, spans, order)


def _permute_pairs_in_place(
    text: str, pairs: Sequence[tuple[yaml.Node, yaml.Node]], order: Sequence[int]
) -> _Edit:
    spans = [(k.start_mark.index, v.end_mark.index) for k, v in pairs]
    return _permute_spans(text, spans, order)


def _permute_spans(text: str, spans: Sequence[tuple[int, int]], order: Sequence[int]) -> _Edit:
    out: list[str] = []
    for position, index in enumerate(order):
        start, end = spans[index]
        out.append(text[start:end])
        if position + 1 < len(spans):
            out.append(text[spans[position][1] : spans[position + 1][0]])
    return _Edit(spans[0][0], spans[-1][1], "".join(out))


class _Lines:
    """The text split into lines (each keeping its line break), with their offsets."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.splitlines(keepends=True)
        self.offsets = [0]
        for line in self.lines:
            self.offsets.append(self.offsets[-1] + len(line))
        first = self.lines[0] if self.lines else "\n"
        self.newline = "\r\n" if first.endswith("\r\n") else "\r" if first.endswith("\r") else "\n"

    def line(self, number: int) -> str:
        return self.lines[number] if number < len(self.lines) else ""

    def permute(
        self,
        chunks: Sequence[tuple[int, int]],
        order: Sequence[int],
        *,
        first_prefix: str = "",
        key_lines: Sequence[int] = (),
    ) -> _Edit:
        """Reorder whole-line chunks.

        With ``first_prefix`` (the ``- `` that starts a sequence entry), the chunks are
        the keys of a block mapping inside a sequence: the prefix moves to the line of
        whichever key comes first, and comment lines above that key go above the entry.
        """
        start = self.offsets[chunks[0][0]]
        end = self.offsets[chunks[-1][1] + 1]
        texts: list[list[str]] = []
        for first, last in chunks:
            piece = list(self.lines[first : last + 1])
            if piece and not _has_break(piece[-1]):
                piece[-1] += self.newline
            texts.append(piece)
        if first_prefix:
            # The first chunk's key line loses the "- " in favour of plain indentation.
            texts[0][0] = " " * len(first_prefix) + texts[0][0][len(first_prefix) :]
            lead_chunk = order[0]
            offset = key_lines[lead_chunk] - chunks[lead_chunk][0]
            piece = texts[lead_chunk]
            key_line = piece[offset]
            piece[offset] = first_prefix + key_line[len(first_prefix) :]
            # Comments above the new first key go above the entry, indented as its "- ".
            texts[lead_chunk] = piece[offset:]
            indent = " " * (len(first_prefix) - len(first_prefix.lstrip(" ")))
            lead = [indent + line.lstrip(" ") if line.strip() else line for line in piece[:offset]]
        else:
            lead = []
        out = "".join(lead) + "".join("".join(texts[i]) for i in order)
        if not _has_break(self.text[end - 1 : end]) and out.endswith(self.newline):
            out = out[: -len(self.newline)]
        return _Edit(start, end, out)


def _has_break(text: str) -> bool:
    return text.endswith(("\n", "\r", "\x85", "\u2028", "\u2029"))


def _apply(text: str, edits: Sequence[_Edit]) -> str:
    # One pass over non-overlapping edits: splicing one by one would copy the text once
    # per edit (quadratic on a large file with many clients out of order).
    out: list[str] = []
    position = 0
    for edit in sorted(edits, key=lambda e: e.start):
        out.append(text[position : edit.start])
        out.append(edit.text)
        position = edit.end
    out.append(text[position:])
    return "".join(out)


# --- safety ------------------------------------------------------------------------------


def _normalized(data: Any) -> Any:
    """``data`` with its sets sorted (dict equality already ignores key order)."""
    if not isinstance(data, dict) or not isinstance(data.get("clients"), list):
        return data
    clients = [
        {k: sorted(v) if k in SET_FIELDS and _strings(v) else v for k, v in entry.items()}
        if isinstance(entry, dict) else entry
        for entry in data["clients"]
    ]
    return {**data, "clients": clients}


def _verify(text: str, data: Any, display: str) -> None:
    try:
        again = load_bytes(text.encode("utf-8"), display)
    except InputError as exc:
        raise _unsafe(display, str(exc)) from exc
    if again.data != _normalized(data) or not is_normal(again.data):
        raise _unsafe(display, "the rewritten text would not hold the same data in normal form")


def _unsafe(display: str, why: str) -> Oauth2SyncError:
    return Oauth2SyncError(
        f"{display}: fmt cannot rewrite this file safely ({why}); it was left unchanged, "
        "please report this"
    )


def _cannot(display: str, node: yaml.Node, why: str) -> InputError:
    mark = node.start_mark
    return InputError([
        Diagnostic(
            display, mark.line + 1, mark.column + 1, "error", "fmt",
            f"cannot reorder this client: {why}; reorder its keys by hand",
        )
    ])


# --- files -------------------------------------------------------------------------------


def _read(path: Path, display: str) -> bytes:
    try:
        with open_regular(path) as stream:
            return stream.read()
    except OSError as exc:
        raise InputError(
            [Diagnostic(display, 1, 1, "error", "file", exc.strerror or str(exc))]
        ) from exc


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, keeping its mode; a reader never sees half a file."""
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # newline="" writes the line breaks exactly as the text holds them (CRLF stays).
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
