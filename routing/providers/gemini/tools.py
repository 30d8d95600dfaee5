"""Tools for Gemini: function declarations with their JSON Schema parameters reduced to the
subset Gemini's Schema takes (`schema_to_gemini`), and tool_choice → functionCallingConfig."""

from __future__ import annotations

import json
from typing import Any

from routing.messages import ToolChoice, Tools

# Gemini's Schema: an OpenAPI 3.0 subset. Everything else is left out.
_SCHEMA_KEYS = frozenset(
    {
        "description",
        "title",
        "nullable",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "minProperties",
        "maxProperties",
        "propertyOrdering",
    }
)
_TYPES = {
    "string": "STRING",
    "number": "NUMBER",
    "integer": "INTEGER",
    "boolean": "BOOLEAN",
    "array": "ARRAY",
    "object": "OBJECT",
}
_FORMATS = {"STRING": {"enum", "date-time"}, "INTEGER": {"int32", "int64"}, "NUMBER": {"float", "double"}}
_MAX_DEPTH = 32


def schema_to_gemini(schema: Any, *, root: dict[str, Any] | None = None, depth: int = 0) -> dict[str, Any]:
    """A JSON Schema → Gemini's Schema: `$ref`s to `$defs`/`definitions` inlined (a recursive
    one stops at a plain object), a type list → one type plus `nullable`, `const` and
    non-string enums → string enums, `oneOf` → `anyOf`, a one-item `allOf` merged, only the
    formats Gemini knows, `required` limited to the listed properties, and every other
    keyword (`additionalProperties`, `$schema`, `strict`, `examples`, `default`…) dropped."""
    if not isinstance(schema, dict):
        return {}
    root = schema if root is None else root
    if depth > _MAX_DEPTH:
        return {"type": "OBJECT"}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = _resolve(root, ref)
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return schema_to_gemini(merged, root=root, depth=depth + 1)
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
        merged = {**all_of[0], **{k: v for k, v in schema.items() if k != "allOf"}}
        return schema_to_gemini(merged, root=root, depth=depth + 1)
    out: dict[str, Any] = {k: v for k, v in schema.items() if k in _SCHEMA_KEYS}
    kind = schema.get("type")
    if isinstance(kind, list):
        if "null" in kind:
            out["nullable"] = True
        kind = next((k for k in kind if k != "null"), None)
    options = schema.get("anyOf", schema.get("oneOf"))
    if isinstance(options, list):
        branches = [o for o in options if isinstance(o, dict)]
        if any(o.get("type") == "null" for o in branches):
            out["nullable"] = True
            branches = [o for o in branches if o.get("type") != "null"]
        if len(branches) == 1:
            return {**schema_to_gemini(branches[0], root=root, depth=depth + 1), **out}
        if branches:
            out["anyOf"] = [schema_to_gemini(o, root=root, depth=depth + 1) for o in branches]
    enum = schema.get("enum")
    if "const" in schema:
        enum = [schema["const"]]
    if isinstance(enum, list):
        out["enum"] = [v if isinstance(v, str) else json.dumps(v) for v in enum if v is not None]
        if None in enum:
            out["nullable"] = True
        kind = "string"
    if kind is None and "properties" in schema:
        kind = "object"
    if kind is None and "items" in schema:
        kind = "array"
    gemini_type = _TYPES.get(kind) if isinstance(kind, str) else None
    if gemini_type:
        out["type"] = gemini_type
    fmt = schema.get("format")
    if gemini_type in _FORMATS and fmt in _FORMATS[gemini_type]:
        out["format"] = fmt
    if gemini_type == "ARRAY":
        out["items"] = schema_to_gemini(schema.get("items") or {"type": "string"}, root=root, depth=depth + 1)
        if not out["items"]:
            out["items"] = {"type": "STRING"}
    properties = schema.get("properties")
    if gemini_type == "OBJECT" and isinstance(properties, dict) and properties:
        out["properties"] = {
            str(name): schema_to_gemini(value, root=root, depth=depth + 1)
            for name, value in properties.items()
        }
        required = schema.get("required")
        if isinstance(required, list):
            listed = [name for name in required if name in properties]
            if listed:
                out["required"] = listed
    return out


def _resolve(root: dict[str, Any], ref: str) -> dict[str, Any]:
    if not ref.startswith("#/"):
        return {}
    node: Any = root
    for key in ref[2:].split("/"):
        if not isinstance(node, dict):
            return {}
        node = node.get(key.replace("~1", "/").replace("~0", "~"))
    return node if isinstance(node, dict) else {}


def _parameters(schema: Any) -> dict[str, Any] | None:
    """A function's parameters, or None for one that takes none (Gemini refuses an OBJECT
    schema without properties)."""
    converted = schema_to_gemini(schema) if schema else {}
    if converted.get("type") == "OBJECT" and not converted.get("properties"):
        return None
    return converted or None


def tools_to_gemini(tools: Tools) -> list[dict[str, Any]]:
    declarations = []
    for tool in tools:
        function = tool["function"]
        declaration: dict[str, Any] = {"name": function["name"]}
        if function.get("description"):
            declaration["description"] = function["description"]
        parameters = _parameters(function.get("parameters"))
        if parameters is not None:
            declaration["parameters"] = parameters
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}]


def tools_of_history(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Declarations (no parameters) for the functions a conversation's assistant turns called."""
    names: dict[str, None] = {}
    for message in messages:
        for call in message.get("tool_calls") or ():
            names[call["function"]["name"]] = None
    return [{"functionDeclarations": [{"name": name} for name in names]}]


def tool_config_to_gemini(choice: ToolChoice) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice == "none":
        config: dict[str, Any] = {"mode": "NONE"}
    elif choice == "required":
        config = {"mode": "ANY"}
    elif isinstance(choice, dict):
        config = {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}
    else:
        config = {"mode": "AUTO"}
    return {"functionCallingConfig": config}
