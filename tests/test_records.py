"""records: the run-time NamedTuple and TypedDict behave as typing's on the same bodies."""

from __future__ import annotations

import importlib
import pickle
import pkgutil
import sys
import typing

import pytest

import oauth2_sync
from oauth2_sync import records


# The same body twice, on purpose: under typing's NamedTuple and under records'. One
# body for both would need a base chosen at run time, which the type checker cannot follow.
class TypingPoint(typing.NamedTuple):
    """A point."""

    x: int
    y: int = 0
    label: str | None = None
    """The point's name."""

    def norm(self) -> int:
        return abs(self.x) + abs(self.y)

    @property
    def shown(self) -> str:
        return f"{self.label or '?'}({self.x}, {self.y})"


class Point(records.NamedTuple):
    """A point."""

    x: int
    y: int = 0
    label: str | None = None
    """The point's name."""

    def norm(self) -> int:
        return abs(self.x) + abs(self.y)

    @property
    def shown(self) -> str:
        return f"{self.label or '?'}({self.x}, {self.y})"


class TypingDoc(typing.TypedDict):
    name: str
    size: typing.NotRequired[int]


class TypingPartial(TypingDoc, total=False):
    extra: str


class Doc(records.TypedDict):
    name: str
    size: typing.NotRequired[int]


class Partial(Doc, total=False):
    extra: str


def test_a_record_is_the_class_typing_makes() -> None:
    assert Point._fields == TypingPoint._fields == ("x", "y", "label")
    assert Point._field_defaults == TypingPoint._field_defaults == {"y": 0, "label": None}
    assert Point.__doc__ == TypingPoint.__doc__ == "A point."
    assert Point.__mro__[1:] == TypingPoint.__mro__[1:] == (tuple, object)
    assert (Point.__module__, Point.__qualname__) == (__name__, "Point")
    # typing's class also keeps the bases its ``__mro_entries__`` replaced.
    assert sorted(vars(Point)) == sorted(set(vars(TypingPoint)) - {"__orig_bases__"})
    # typing holds ForwardRef("int"); these are the strings the body wrote.
    assert Point.__annotations__ == {"x": "int", "y": "int", "label": "str | None"}
    assert Point.__new__.__annotations__ == Point.__annotations__


def _behaves(made: TypingPoint | Point) -> None:
    assert made.norm() == 7
    assert made.shown == "p(3, -4)"
    assert made._replace(y=1) == (3, 1, "p")
    assert made._asdict() == {"x": 3, "y": -4, "label": "p"}
    assert hash(made) == hash((3, -4, "p"))
    with pytest.raises(AttributeError):
        made.x = 1  # type: ignore[misc]
    assert made == (3, -4, "p")  # last: the type checker narrows ``made`` to a tuple


def test_a_record_behaves_as_typing_s() -> None:
    _behaves(TypingPoint(3, -4, "p"))
    _behaves(Point(3, -4, "p"))
    assert repr(Point(1)) == "Point(x=1, y=0, label=None)"
    assert repr(TypingPoint(1)) == "TypingPoint(x=1, y=0, label=None)"
    assert Point._make([1, 2, None]) == (1, 2, None)
    assert TypingPoint._make([1, 2, None]) == (1, 2, None)
    assert pickle.loads(pickle.dumps(Point(5))) == Point(5)


def test_a_field_without_default_after_defaults_is_refused_as_by_typing() -> None:
    for base in (typing.NamedTuple, records.NamedTuple):
        with pytest.raises(TypeError) as caught:
            class Bad(base):  # type: ignore[misc,valid-type]
                a: int = 1
                b: str = ""
                c: int
        assert str(caught.value) == (
            "Non-default namedtuple field c cannot follow default fields a, b"
        )


def test_a_body_may_not_overwrite_namedtuple_attributes_as_with_typing() -> None:
    for base in (typing.NamedTuple, records.NamedTuple):
        with pytest.raises(AttributeError) as caught:
            class Bad(base):  # type: ignore[misc,valid-type]
                a: int

                def _replace(self) -> None:
                    pass
        assert str(caught.value) == "Cannot overwrite NamedTuple attribute _replace"


def test_a_record_body_with_deferred_annotations_is_refused() -> None:
    """Python 3.14 without ``from __future__ import annotations`` gives a class body
    ``__annotate__`` instead of ``__annotations__``: refused, not a record without fields."""
    with pytest.raises(TypeError) as caught:
        type(records.NamedTuple)(  # type: ignore[misc]
            "Late", (records.NamedTuple,),
            {"__module__": __name__, "__qualname__": "Late", "__annotate__": lambda f: {}},
        )
    assert str(caught.value) == "Late: a record's module needs 'from __future__ import annotations'"


def test_a_record_has_no_other_base() -> None:
    with pytest.raises(TypeError) as caught:
        class Bad(records.NamedTuple, typing.Generic[typing.TypeVar("T")]):  # type: ignore[misc]
            a: int
    assert str(caught.value) == "Bad: a record has no other base than NamedTuple"


def test_a_typeddict_makes_plain_dicts_and_refuses_isinstance_as_typing_s() -> None:
    for cls in (TypingPartial, Partial):
        made = cls(name="n", extra="e")
        assert type(made) is dict
        assert made == {"name": "n", "extra": "e"}
        with pytest.raises(TypeError) as caught:
            isinstance(made, cls)
        assert str(caught.value) == "TypedDict does not support instance and class checks"
    assert Partial.__total__ is TypingPartial.__total__ is False


def test_every_record_of_the_package_is_made_here() -> None:
    """Every record and document class of the package is records': no annotation went
    through typing's checks (which leave ForwardRefs)."""
    for found in pkgutil.walk_packages(oauth2_sync.__path__, "oauth2_sync."):
        if found.name != "oauth2_sync.__main__":
            importlib.import_module(found.name)
    made = [
        value for name, module in sorted(sys.modules.items())
        if name.startswith("oauth2_sync") and module is not None
        for value in vars(module).values()
        if isinstance(value, type) and value.__module__ == name
        and (hasattr(value, "_fields") or hasattr(value, "__total__"))
    ]
    assert len(made) > 45
    assert [cls for cls in made if not all(
        type(a) is str for a in cls.__annotations__.values()
    )] == []
