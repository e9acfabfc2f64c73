"""Strict YAML loading with positions.

PyYAML's C loader does the parsing; this module refuses what a client file must not
contain (duplicate keys, anchors and aliases, merge keys, tags, tab indentation,
non-UTF-8 bytes, files over 1 MiB, absurd nesting). A ``Document`` holds plain data,
the text, and the node tree the parser built for the data until the file is checked
(``Document.release_data``): findings take their line and column from its marks
(``Document.locate``) without parsing the file again.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import deque
from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import Any

import yaml

from oauth2_sync import yaml11
from oauth2_sync.errors import Diagnostic, InputError, RuleId
from oauth2_sync.fast.resolver import resolve_strict
from oauth2_sync.files import open_regular

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 1000
"""Deeper nesting is refused. libyaml composes recursively: older builds overflowed the
C stack near 100,000 levels; the build in PyYAML 6.0.4's wheels stops at 1,000 itself,
and its error is reported with the same rule and message as ours."""
_FIRST_READ = 64 * 1024
_TAB_INDENT = re.compile(r"^[ ]*\t", re.MULTILINE)

PathItem = str | int
DataPath = tuple[PathItem, ...]


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_SCALAR = yaml.ScalarNode


class _StrictConstructor(yaml.CSafeLoader):
    """CSafeLoader that refuses duplicate keys, merge keys and non-string keys.

    Strings, mappings and lists (nearly every node of a client file) are built here
    directly; PyYAML's generic constructor, with its recursion guards and deferred
    generators, runs only for the other scalars (numbers, booleans, null...) and
    explicitly tagged nodes. That halves the time a file takes to load. Collections are
    filled breadth first, in the order PyYAML fills them, so that of several refusals
    in one file the same one is reported first; and no recursion means no depth limit.

    It also notes the line of each entry of a top-level ``clients`` list while the
    node tree exists anyway, so plans can cite them without parsing the file again, and
    keeps the tree's root for the positions of the file's findings (``Document``).
    """

    entry_lines: tuple[int, ...] = ()
    root: yaml.Node | None = None

    # PyYAML's question answered by first character (``fast.resolver``). A plain scalar
    # that YAML 1.1 and 1.2 read differently gets a tag of its own, refused in ``_value``
    # with a message saying what each would read.
    resolve = staticmethod(resolve_strict)

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass  # only path resolvers need it, and the safe loader has none

    def ascend_resolver(self) -> None:
        pass

    def construct_document(self, node: yaml.Node) -> Any:
        self.root = node
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == "clients" and isinstance(value_node, yaml.SequenceNode):
                    self.entry_lines = tuple(item.start_mark.line + 1 for item in value_node.value)
        pending: deque[tuple[Any, yaml.Node]] = deque()
        data = self._value(node, pending)
        self._fill(pending)
        return data

    def _fill(self, pending: deque[tuple[Any, yaml.Node]]) -> None:
        """Fill the collections ``_value`` left empty, and those they hold, in turn."""
        while pending:
            container, collection = pending.popleft()
            if isinstance(collection, yaml.MappingNode):
                self._fill_mapping(container, collection, pending)
            else:
                # A string (nearly every item) taken here, as in ``_value``: a call less.
                container.extend([
                    item.value if item.tag == _STR and type(item) is _SCALAR
                    else self._value(item, pending)
                    for item in collection.value
                ])

    def _value(self, node: yaml.Node, pending: deque[tuple[Any, yaml.Node]]) -> Any:
        """A string now; an empty collection filled later; anything else by PyYAML."""
        tag, kind = node.tag, type(node)
        if tag == _STR and kind is yaml.ScalarNode:
            return node.value
        if tag == _MAP and kind is yaml.MappingNode:
            mapping: dict[str, Any] = {}
            pending.append((mapping, node))
            return mapping
        if tag == _SEQ and kind is yaml.SequenceNode:
            items: list[Any] = []
            pending.append((items, node))
            return items
        if tag == yaml11.TAG:
            raise _Refused("yaml-1.1", self._yaml11_message(node), node.start_mark)
        try:
            return self.construct_object(node, deep=True)
        except (_Refused, yaml.YAMLError):
            raise
        except Exception as exc:  # a timestamp 2001-13-45 (ValueError), !!bool x (KeyError)...
            raise _Refused("yaml-syntax", _unreadable(node, exc), node.start_mark) from None

    def _yaml11_message(self, node: yaml.Node) -> str:
        """Why a plain scalar that YAML 1.1 and 1.2 readers disagree on is refused."""
        text: str = node.value
        resolvers = self.yaml_implicit_resolvers.get(text[:1], [])
        tag = next(t for t, r in resolvers if r.match(text))
        value = self.construct_object(yaml.ScalarNode(tag, text), deep=True)
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        return (
            f"{text!r} is a YAML 1.1 {yaml11.kind(tag, text)} ({shown}): write {shown}, "
            "or quote it to mean the text"
        )

    def _fill_mapping(
        self, mapping: dict[str, Any], node: yaml.MappingNode,
        pending: deque[tuple[Any, yaml.Node]],
    ) -> None:
        for key_node, value_node in node.value:
            # Strings (nearly every key and value) taken here, as in ``_key`` and
            # ``_value``: two calls less a key.
            if key_node.tag == _STR and type(key_node) is _SCALAR:
                key = key_node.value
            else:
                key = self._key(key_node)
            if key in mapping:
                # Found again only now, on the error path: no mark kept per key.
                first = next(k for k, _ in node.value if self._key(k) == key).start_mark
                raise _Refused(
                    "duplicate-key",
                    f"duplicate key '{key}' (first defined at line {first.line + 1}, "
                    f"column {first.column + 1})",
                    key_node.start_mark,
                )
            if value_node.tag == _STR and type(value_node) is _SCALAR:
                mapping[key] = value_node.value
            else:
                mapping[key] = self._value(value_node, pending)

    def _key(self, key_node: yaml.Node) -> str:
        if key_node.tag == _STR and type(key_node) is yaml.ScalarNode:
            value: str = key_node.value
            return value
        if key_node.tag == _MERGE:
            raise _Refused("merge-key", "merge keys (<<) are not allowed", key_node.start_mark)
        if not isinstance(key_node, yaml.ScalarNode):
            raise _Refused(
                "yaml-key", "mapping keys must be strings, not a collection", key_node.start_mark
            )
        key = self._value(key_node, deque())
        if not isinstance(key, str):
            raise _Refused(
                "yaml-key", f"mapping keys must be strings, not {key!r}", key_node.start_mark
            )
        return key

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        # Reached only through PyYAML's constructors of explicitly tagged nodes (``!!set``).
        if not isinstance(node, yaml.MappingNode):
            raise _Refused("yaml-syntax", f"expected a mapping for {node.tag}", node.start_mark)
        mapping: dict[Hashable, Any] = {}
        self._fill(deque([(mapping, node)]))
        return mapping


def _unreadable(node: yaml.Node, exc: Exception) -> str:
    what = f"{node.tag.rsplit(':', 1)[-1]} value"
    shown = repr(node.value) if isinstance(node.value, str) else "this"
    if len(shown) > 60:
        shown = shown[:57] + "..."
    detail = str(exc).split("\n")[0] if isinstance(exc, ValueError) else ""
    return f"{shown} is not a valid {what}" + (f" ({detail})" if 0 < len(detail) <= 80 else "")


class _Refused(Exception):
    def __init__(self, rule: RuleId, message: str, mark: Any) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.line = mark.line + 1 if mark else 1
        self.column = mark.column + 1 if mark else 1


class Document:
    """One loaded YAML file: its data, and positions on demand."""

    __slots__ = ("_released", "_root", "data", "display", "entry_lines", "text")

    def __init__(
        self, display: str, text: str, data: Any, entry_lines: tuple[int, ...] = (),
        root: yaml.Node | None = None,
    ) -> None:
        self.display = display
        self.text = text
        self.data = data
        self.entry_lines = entry_lines
        """Line of each entry of the top-level ``clients`` list, noted while parsing."""
        self._root = root
        """The node tree the data was built from, until ``release_data``."""
        self._released = False

    def release_data(self) -> None:
        """Forget the parsed data and its node tree once the file is checked.

        A plan keeps the document of every client it cites; at 100,000 files the data
        would be a third of its memory (1.2 KiB a client) for nothing, and the node
        trees several times that. A position asked for afterwards (an online check's
        error) parses the text again, without keeping the tree.
        """
        self.data = None
        self._root = None
        self._released = True

    def locate(self, path: DataPath, *, key: bool = False) -> tuple[int, int]:
        """Line and column (1-based) of the value at ``path``, or of its key with ``key``.

        A path that does not exist all the way (a missing property) gives the position
        of the deepest part that does.
        """
        root = self._root
        if root is None:
            root = yaml.compose(self.text, Loader=yaml.CSafeLoader)
            if not self._released:  # a document made from text alone: parsed once
                self._root = root
        return locate_in(root, path, key=key)

    def diagnostic(
        self, path: DataPath, rule: RuleId, message: str, *, key: bool = False, warning: bool = False
    ) -> Diagnostic:
        """A finding about the value (or key) at ``path`` of this document."""
        line, column = self.locate(path, key=key)
        return Diagnostic(
            self.display, line, column, "warning" if warning else "error", rule, message
        )


def locate_in(root: yaml.Node | None, path: DataPath, *, key: bool = False) -> tuple[int, int]:
    """Line and column (1-based) of the value at ``path`` in a node tree (see
    ``Document.locate``)."""
    if root is None:
        return 1, 1
    node, mark = root, root.start_mark
    for item in path:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(item, str):
            for key_node, value_node in node.value:
                if key_node.value == item:
                    child = value_node
                    mark = key_node.start_mark if key else value_node.start_mark
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(item, int) and 0 <= item < len(
            node.value
        ):
            child = node.value[item]
            mark = child.start_mark
        if child is None:
            break
        node = child
    return mark.line + 1, mark.column + 1


def display_path(path: Path | str, cwd: str | None = None) -> str:
    """How a file is named in messages: relative to the working directory when inside it.

    ``cwd`` saves asking the system for the working directory again (``os.getcwd()``).
    """
    text = str(path)
    if not os.path.isabs(text):
        return text
    cwd = os.path.join(cwd or os.getcwd(), "")
    return text[len(cwd) :] if text.startswith(cwd) else text


def load_file(path: Path | str, display: str | None = None) -> Document:
    """Read and parse one YAML file strictly; raises ``InputError`` with one diagnostic."""
    shown = display if display is not None else display_path(path)
    try:
        with open_regular(path) as stream:
            # read(MAX_BYTES + 1) at once would allocate (mmap) a 1 MiB buffer for every
            # file: 40 us each, more than parsing a small file.
            raw = stream.read(_FIRST_READ)
            if len(raw) == _FIRST_READ:
                raw += stream.read(MAX_BYTES + 1 - _FIRST_READ)
    except OSError as exc:
        raise InputError(
            [Diagnostic(shown, 1, 1, "error", "file", exc.strerror or str(exc))]
        ) from None
    return load_bytes(raw, shown)


def load_bytes(raw: bytes, display: str) -> Document:
    """Parse YAML bytes strictly; raises ``InputError`` with one diagnostic."""
    try:
        return _load(raw, display)
    except _Refused as exc:
        raise InputError(
            [Diagnostic(display, exc.line, exc.column, "error", exc.rule, exc.message)]
        ) from None


def _load(raw: bytes, display: str) -> Document:
    if len(raw) > MAX_BYTES:
        raise _Refused("file-size", f"file is larger than {MAX_BYTES // 1024} KiB", None)
    text = _decode(raw)
    if "\t" in text:
        match = _TAB_INDENT.search(text)
        if match:
            line = text.count("\n", 0, match.start()) + 1
            raise _Refused(
                "tab-indent",
                "tabs are not allowed for indentation",
                _mark(line, match.end() - match.start()),
            )
    tagged = "!" in text and _TAG_START.search(text) is not None
    if "&" in text or "*" in text or tagged or _may_nest_deeply(text):
        _scan_events(text)
    loader = _StrictConstructor(text)
    try:
        with _refusing_yaml_errors(text):
            data = loader.get_single_data()
    finally:
        loader.dispose()
    return Document(display, text, data, loader.entry_lines, loader.root)


@contextlib.contextmanager
def _refusing_yaml_errors(text: str) -> Iterator[None]:
    """Turn PyYAML's errors into one refusal that points at the problem."""
    try:
        yield
    except yaml.MarkedYAMLError as exc:
        if "maximum nesting depth" in (exc.problem or ""):
            raise _Refused(
                "yaml-depth", f"nesting deeper than {MAX_DEPTH} levels", exc.problem_mark
            ) from None
        raise _Refused(
            "yaml-syntax", _yaml_message(exc), exc.problem_mark or exc.context_mark
        ) from None
    except yaml.reader.ReaderError as exc:
        raise _reader_refusal(text, exc) from None
    except yaml.YAMLError as exc:
        raise _Refused("yaml-syntax", str(exc).strip(), None) from None


def _decode(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _Refused(
            "encoding",
            f"file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
            _mark(line, column),
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def _may_nest_deeply(text: str) -> bool:
    # Each level of nesting costs a bracket or, in block style, at least half a column
    # of the longest line, so below this bound the nesting is shallow enough.
    longest = max(map(len, text.split("\n")))
    return text.count("[") + text.count("{") + 2 * longest > MAX_DEPTH


def _scan_events(text: str) -> None:
    """Refuse anchors, aliases, explicit tags and deep nesting, from the parser's
    event stream."""
    depth = 0
    with _refusing_yaml_errors(text):
        for event in yaml.parse(text, Loader=yaml.CSafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise _Refused(
                    "anchor", f"aliases (*{event.anchor}) are not allowed", event.start_mark
                )
            if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
                raise _Refused(
                    "anchor", f"anchors (&{event.anchor}) are not allowed", event.start_mark
                )
            tag = getattr(event, "tag", None)
            if tag is not None:
                raise _Refused("yaml-syntax", _tag_message(str(tag)), event.start_mark)
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _Refused(
                        "yaml-depth", f"nesting deeper than {MAX_DEPTH} levels", event.start_mark
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1


def _tag_message(tag: str) -> str:
    shown = "!!" + tag.removeprefix(_YAML_TAGS) if tag.startswith(_YAML_TAGS) else tag
    return (
        f"explicit tags ({shown}) are not allowed: write the value itself (quoted, to "
        "mean text)"
    )


_YAML_TAGS = "tag:yaml.org,2002:"
_TAG_START = re.compile(r"(?:^|[\s\[{,])!", re.MULTILINE)
"""Where a tag may start (after a blank or a flow indicator): the event scan runs then."""


def _reader_refusal(text: str, exc: yaml.reader.ReaderError) -> _Refused:
    line = text.count("\n", 0, exc.position) + 1
    column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
    code = exc.character if isinstance(exc.character, int) else ord(exc.character)
    return _Refused(
        "yaml-syntax", f"control character U+{code:04X} is not allowed", _mark(line, column)
    )


def _mark(line: int, column: int) -> yaml.Mark:
    return yaml.Mark("", 0, line - 1, column - 1, "", 0)


def _yaml_message(exc: yaml.MarkedYAMLError) -> str:
    problem = (exc.problem or "invalid YAML").strip()
    if exc.context and exc.context_mark is not None and exc.problem_mark is not None:
        context = exc.context.strip()
        return f"{context} (line {exc.context_mark.line + 1}), {problem}"
    return problem
