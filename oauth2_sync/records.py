"""``NamedTuple`` and ``TypedDict`` for this package: typing's own for the type checker;
at run time the same classes, made without typing's check of each field's annotation.

Under ``from __future__ import annotations`` every annotation is a string, and typing's
``NamedTuple`` and ``TypedDict`` turn each one into a ``ForwardRef``, which compiles it:
0.12M instructions a field, about a quarter of what importing this package's modules
costs a plan, on every run, for objects nothing reads (no code here evaluates an
annotation at run time). What is made here is what typing makes, without those checks:

- a ``NamedTuple`` subclass is the ``collections.namedtuple`` typing builds, with the
  class body's defaults, docstring, methods and properties, and the same errors (a
  field without a default after one with a default; a body redefining ``_replace``,
  ``__new__``...);
- a ``TypedDict`` subclass is a class whose call makes a plain ``dict``, as typing's;
  ``isinstance`` refuses it, as typing's.

``__annotations__`` holds the class body's strings (typing holds ``ForwardRef``\\ s of
them). Generic records and typing's functional forms are not offered: nothing here uses
them, and the type checker would accept them while this would not.
``tests/test_records.py`` compares both with typing's on the same class bodies.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING

__all__ = ["NamedTuple", "TypedDict"]

if TYPE_CHECKING:
    from typing import NamedTuple, TypedDict
else:
    # typing's own lists (3.11): attributes a record body may not set, and the ones the
    # namedtuple keeps from the body's namespace.
    _PROHIBITED = frozenset({
        "__new__", "__init__", "__slots__", "__getnewargs__", "_fields", "_field_defaults",
        "_make", "_replace", "_asdict", "_source",
    })
    _KEPT = frozenset({"__module__", "__name__", "__annotations__"})

    class _NamedTupleMeta(type):
        def __new__(mcs, name, bases, namespace):
            if not bases:  # ``NamedTuple`` itself
                return super().__new__(mcs, name, bases, namespace)
            if bases != (NamedTuple,):
                raise TypeError(f"{name}: a record has no other base than NamedTuple")
            if "__annotations__" not in namespace and "__annotate__" in namespace:
                # Python 3.14 defers annotations unless the module asks for strings: the
                # fields would silently be none.
                raise TypeError(
                    f"{name}: a record's module needs 'from __future__ import annotations'"
                )
            fields = namespace.get("__annotations__", {})
            defaulted: list[str] = []
            for field in fields:
                if field in namespace:
                    defaulted.append(field)
                elif defaulted:
                    raise TypeError(
                        f"Non-default namedtuple field {field} cannot follow default "
                        f"field{'s' if len(defaulted) > 1 else ''} {', '.join(defaulted)}"
                    )
            made = collections.namedtuple(
                name, fields, defaults=[namespace[field] for field in defaulted],
                module=namespace["__module__"],
            )
            made.__annotations__ = made.__new__.__annotations__ = dict(fields)
            for key, value in namespace.items():
                if key in _PROHIBITED:
                    raise AttributeError(f"Cannot overwrite NamedTuple attribute {key}")
                if key not in _KEPT and key not in made._fields:
                    setattr(made, key, value)
            return made

    class NamedTuple(metaclass=_NamedTupleMeta):
        """Base of a record: ``class Point(NamedTuple): x: int``, as typing's."""

    class _TypedDictMeta(type):
        def __new__(mcs, name, bases, namespace, total=True):
            made = super().__new__(mcs, name, (dict,), namespace)
            made.__total__ = total
            return made

        def __call__(cls, *args, **kwargs):
            return dict(*args, **kwargs)

        def __subclasscheck__(cls, other):
            raise TypeError("TypedDict does not support instance and class checks")

        __instancecheck__ = __subclasscheck__

    class TypedDict(metaclass=_TypedDictMeta):
        """Base of a JSON document's type: ``class Doc(TypedDict): key: str``, as typing's."""
