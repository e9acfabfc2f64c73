"""MkDocs hooks: the generated parts of the reference, so that docs and code cannot disagree.

A page asks for a generated part with an HTML comment on a line of its own:

- ``<!-- generated: schema NAME -->``: every field of ``oauth2_sync/schemas/NAME.schema.json``
  (``clients``, ``settings``, ``registry-seed``) as a table: path, type, default, description.
- ``<!-- generated: openapi -->``: every operation of the registry API's OpenAPI file
  (``oauth2_sync/schemas/registry-api.openapi.yaml``), then its component schemas.

The command reference comes from the click tree through the ``mkdocs-click`` extension.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

SCHEMAS = Path(__file__).resolve().parents[1] / "oauth2_sync" / "schemas"
MARKER = re.compile(r"^<!-- generated: (schema [\w-]+|openapi) -->$", re.M)
METHODS = ("get", "post", "put", "patch", "delete")

JsonObject = Mapping[str, Any]  # a parsed JSON Schema or OpenAPI node: any JSON value inside


def on_page_markdown(markdown: str, **_: object) -> str:
    """Replace each ``<!-- generated: ... -->`` marker of a page by what it names."""
    return MARKER.sub(lambda m: _generate(m.group(1)), markdown)


def _generate(what: str) -> str:
    if what == "openapi":
        document = yaml.safe_load((SCHEMAS / "registry-api.openapi.yaml").read_text("utf-8"))
        return openapi_markdown(document)
    name = what.split(" ", 1)[1]
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text("utf-8"))
    return schema_markdown(schema)


def _cell(text: object) -> str:
    # A table cell is one line, and a pipe would end it.
    return " ".join(str(text).split()).replace("|", "\\|")


def _resolve(node: JsonObject, root: JsonObject) -> JsonObject:
    while "$ref" in node:
        target: Any = root
        for part in str(node["$ref"]).removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _type(node: JsonObject, root: JsonObject) -> str:
    if "enum" in node:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    for key in ("oneOf", "anyOf"):
        if key in node:
            return " or ".join(_type(_resolve(n, root), root) for n in node[key])
    kind = node.get("type", "any")
    if kind == "array" and "items" in node:
        return f"list of {_type(_resolve(node['items'], root), root)}"
    return " or ".join(kind) if isinstance(kind, list) else str(kind)


def _fields(node: JsonObject, root: JsonObject, path: str) -> Iterator[tuple[str, JsonObject]]:
    node = _resolve(node, root)
    required = set(node.get("required", ()))
    for name, declared in node.get("properties", {}).items():
        child = _resolve(declared, root)
        here = f"{path}.{name}" if path else name
        yield (here + (" (required)" if name in required else "")), child
        yield from _fields(child, root, here)
        if "items" in child:
            yield from _fields(child["items"], root, here + "[]")
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping):
        here = f"{path}.<name>" if path else "<name>"
        yield here, _resolve(extra, root)
        yield from _fields(extra, root, here)


def schema_markdown(schema: JsonObject, root: JsonObject | None = None) -> str:
    """A JSON Schema as a Markdown table of its fields, nested ones by dotted path;
    ``$ref``s are resolved in ``root`` (the schema itself by default)."""
    root = schema if root is None else root
    rows = ["| field | type | default | description |", "| --- | --- | --- | --- |"]
    for path, node in _fields(schema, root, ""):
        default = f"`{json.dumps(node['default'])}`" if "default" in node else ""
        description = node.get("description", node.get("title", ""))
        rows.append(f"| `{path}` | {_cell(_type(node, root))} | {_cell(default)} "
                    f"| {_cell(description)} |")
    intro = _cell(schema.get("description", ""))
    return f"{intro}\n\n" + "\n".join(rows) + "\n"


def _schema_name(node: JsonObject) -> str:
    if "$ref" in node:
        name = str(node["$ref"]).rsplit("/", 1)[1]
        return f"[`{name}`](#schema-{name.lower()})"
    for key in ("oneOf", "anyOf"):
        if key in node:
            return " or ".join(_schema_name(n) for n in node[key])
    if node.get("type") == "array" and "items" in node:
        return f"list of {_schema_name(node['items'])}"
    return f"`{node.get('type', 'any')}`"


def _operation(path: str, method: str, op: JsonObject, root: JsonObject) -> list[str]:
    out = [f"### `{method.upper()} {path}`", "", f"**{op.get('summary', '')}**", ""]
    if op.get("description"):
        out += [str(op["description"]).strip(), ""]
    params = [_resolve(p, root) for p in op.get("parameters", ())]
    if params:
        out += ["| parameter | in | type | required |", "| --- | --- | --- | --- |"]
        out += [f"| `{p['name']}` | {p['in']} | {_cell(_type(_resolve(p.get('schema', {}), root), root))} "
                f"| {'yes' if p.get('required') else 'no'} |" for p in params]
        out.append("")
    body = op.get("requestBody", {}).get("content", {})
    for media, content in body.items():
        out += [f"Request body (`{media}`): {_schema_name(content.get('schema', {}))}", ""]
    out += ["| status | meaning | body |", "| --- | --- | --- |"]
    for status, response in op.get("responses", {}).items():
        resolved = _resolve(response, root)
        schemas = [_schema_name(c["schema"]) for c in resolved.get("content", {}).values()
                   if "schema" in c]
        out.append(f"| {status} | {_cell(resolved.get('description', ''))} | {', '.join(schemas)} |")
    return [*out, ""]


def openapi_markdown(document: JsonObject) -> str:
    """The operations of an OpenAPI document, then its component schemas."""
    info = document["info"]
    out = [f"## {info['title']} {info['version']}", "", str(info.get("description", "")).strip(), "",
           "## Operations", ""]
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                out += _operation(path, method, item[method], document)
    out += ["## Schemas", ""]
    for name, schema in document["components"]["schemas"].items():
        out += [f"### `{name}` {{ #schema-{name.lower()} }}", ""]
        resolved = _resolve(schema, document)
        if "properties" in resolved:
            out.append(schema_markdown(resolved, document))
        else:
            out += [f"{_cell(_type(resolved, document))}: {_cell(resolved.get('description', ''))}", ""]
    return "\n".join(out) + "\n"
