"""JSON Schema (as OpenAI tools and `response_format` carry it) → Gemini's OpenAPI-subset `Schema`.

Gemini's Schema knows a fixed set of fields and upper-case type names; JSON Schema's
`["string", "null"]` becomes `nullable`, local `$ref`s into `$defs`/`definitions` are
inlined, and fields Gemini would refuse (`additionalProperties`, `$schema`, `strict`, ...)
are left out.
"""
from __future__ import annotations

from typing import Any

Json = dict[str, Any]

_KEPT = frozenset({"format", "title", "description", "nullable", "enum", "maxItems", "minItems", "required",
                   "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "default",
                   "minimum", "maximum", "propertyOrdering"})
_MAX_DEPTH = 32  # recursive $refs are cut here


def gemini_schema(schema: Any) -> Json:
    if not isinstance(schema, dict):
        return {}
    defs: Json = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    return _convert(schema, defs, 0)


def _resolve(schema: Json, defs: Json) -> Json:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(("#/$defs/", "#/definitions/")):
        target = defs.get(ref.rsplit("/", 1)[1])
        if isinstance(target, dict):
            return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _convert(schema: Json, defs: Json, depth: int) -> Json:
    if depth > _MAX_DEPTH:
        return {}
    schema = _resolve(schema, defs)
    out: Json = {k: v for k, v in schema.items() if k in _KEPT}
    if "const" in schema and "enum" not in out:
        out["enum"] = [schema["const"]]
    kind = schema.get("type")
    if isinstance(kind, list):
        if "null" in kind:
            out["nullable"] = True
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
        if len(kinds) > 1:
            out["anyOf"] = [{"type": k.upper()} for k in kinds if isinstance(k, str)]
    if isinstance(kind, str):
        out["type"] = kind.upper()
    if "enum" in out:
        out["enum"] = [str(v) for v in out["enum"] if v is not None]
        out["type"] = "STRING"  # Gemini's enums are string enums
    options = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(options, list):
        converted = [_convert(o, defs, depth + 1) for o in options if isinstance(o, dict) and o.get("type") != "null"]
        if any(isinstance(o, dict) and o.get("type") == "null" for o in options):
            out["nullable"] = True
        if len(converted) == 1:
            out.update(converted[0])
        elif converted:
            out["anyOf"] = converted
    if isinstance(schema.get("properties"), dict):
        out["properties"] = {name: _convert(prop, defs, depth + 1) for name, prop in schema["properties"].items()
                             if isinstance(prop, dict)}
        out.setdefault("type", "OBJECT")
    if isinstance(schema.get("items"), dict):
        out["items"] = _convert(schema["items"], defs, depth + 1)
        out.setdefault("type", "ARRAY")
    return out
