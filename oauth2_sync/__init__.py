"""oauth2-sync: manage the OAuth2 clients of a client registry as code.

The package reads one way, like the data flows:

``loader`` (strict YAML) -> ``validation`` (schema and OAuth rules) -> ``model``
(normal form) -> ``diff`` -> ``plan`` -> ``render`` (text, JSON, Markdown, ...);
``registry`` holds the adapters behind one small interface, ``apply`` executes a
plan against one of them, and ``cli`` only parses, calls and renders.
"""

from __future__ import annotations

__version__ = "0.1.0"
