"""The JSON Schema of the dictionary language, and the reference document generated from it.

`provider_json_schema()` is generated from the pydantic model (`core/model.py`) and committed as
`operator/vnf_operator/schemas/provider.schema.json` (editors validate `providers/*.yaml` with it);
`reference_markdown()` renders `docs/language-reference.md`. Unit tests fail when either committed
file is stale; `vnfctl schema --write` regenerates both. Pure: no file I/O here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from vnf_operator.core.model import API_VERSION, LANGUAGE_VERSION, ProviderManifest

SCHEMA_ID = "https://vnf.operators.dev/schemas/provider.schema.json"
SCHEMA_PATH = "operator/vnf_operator/schemas/provider.schema.json"
REFERENCE_PATH = "docs/language-reference.md"


def _close_maps(node: Any) -> None:
    """`dict[Name, X]` becomes patternProperties; names not matching the pattern are errors too."""
    if isinstance(node, dict):
        if "patternProperties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for v in node.values():
            _close_maps(v)
    elif isinstance(node, list):
        for v in node:
            _close_maps(v)


def provider_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a provider document: a VnfProvider manifest or a bare dictionary."""
    manifest = ProviderManifest.model_json_schema(by_alias=True, mode="validation")
    defs: dict[str, Any] = manifest.pop("$defs", {})
    defs["ProviderManifest"] = manifest
    _close_maps(defs)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "vnf-operator provider dictionary",
        "description": (
            f"A VnfProvider manifest ({API_VERSION}) whose spec is a provider dictionary (language "
            f"{LANGUAGE_VERSION}), or a bare dictionary. Generated from vnf_operator/core/model.py; "
            "see docs/language.md."
        ),
        "anyOf": [{"$ref": "#/$defs/ProviderManifest"}, {"$ref": "#/$defs/ProviderDictionary"}],
        "$defs": dict(sorted(defs.items())),
    }


def schema_text() -> str:
    """The committed form of the schema (stable key order, trailing newline)."""
    return json.dumps(provider_json_schema(), indent=2, ensure_ascii=False) + "\n"


# ----------------------------------------------------------------------------- reference document


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _anchor(name: str) -> str:
    return name.lower()


def _type(s: Any) -> str:
    if not isinstance(s, dict) or not s:
        return "any"
    if "$ref" in s:
        n = _ref_name(s["$ref"])
        return f"[{n}](#{_anchor(n)})"
    if "const" in s:
        return f"`{json.dumps(s['const'])}`"
    if "enum" in s:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in s["enum"])
    for key in ("anyOf", "oneOf"):
        if key in s:
            parts = [_type(x) for x in s[key] if x.get("type") != "null"]
            return " or ".join(parts) if parts else "null"
    t = s.get("type")
    if t == "array":
        return f"list of {_type(s.get('items', {}))}"
    if t == "object":
        pp = s.get("patternProperties")
        if pp:
            (_, v), *_ = pp.items()
            return f"map of name → {_type(v)}"
        ap = s.get("additionalProperties")
        if isinstance(ap, dict):
            return f"map of text → {_type(ap)}"
        return "object"
    if t == "string" and s.get("x-vnf-template"):
        return "template"
    if isinstance(t, list):
        return " or ".join(str(x) for x in t)
    return str(t or "any")


def _default(s: dict[str, Any], required: bool) -> str:
    if required:
        return "**required**"
    if "default" in s:
        d = s["default"]
        if d is None or d == "" or d == [] or d == {}:
            return ""
        return f"`{json.dumps(d, ensure_ascii=False)}`"
    return ""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _order(defs: dict[str, Any]) -> Iterator[str]:
    """Definitions in reading order: breadth-first from the manifest."""
    seen: list[str] = []
    queue = ["ProviderManifest", "ProviderDictionary"]
    while queue:
        n = queue.pop(0)
        if n in seen or n not in defs:
            continue
        seen.append(n)
        text = json.dumps(defs[n])
        idx = 0
        while True:
            idx = text.find('"$ref": "#/$defs/', idx)
            if idx < 0:
                break
            start = idx + len('"$ref": "#/$defs/')
            end = text.find('"', start)
            queue.append(text[start:end])
            idx = end
    yield from seen
    yield from (n for n in sorted(defs) if n not in seen)


def reference_markdown(schema: dict[str, Any] | None = None) -> str:
    """docs/language-reference.md: every key of every object, with type, default and description."""
    schema = schema or provider_json_schema()
    defs: dict[str, Any] = schema["$defs"]
    out = [
        "# Provider dictionary language reference",
        "",
        "<!-- Generated from the JSON Schema by `vnfctl schema --reference`; do not edit by hand. -->",
        "",
        f"Language `{LANGUAGE_VERSION}`, manifest `apiVersion: {API_VERSION}`, `kind: VnfProvider`. "
        "The guide is [language.md](language.md); the machine-readable form is "
        "`operator/vnf_operator/schemas/provider.schema.json`.",
        "",
        "Keys are camelCase. *template* marks a Jinja2 template (sandboxed, strict undefined); "
        "*name* keys match `^[A-Za-z_][A-Za-z0-9_-]{0,62}$`.",
        "",
    ]
    for name in _order(defs):
        d = defs[name]
        out += [f"## {name}", ""]
        if d.get("description"):
            out += [_cell(d["description"]), ""]
        if "enum" in d:
            out += ["| value |", "|---|"]
            out += [f"| `{v}` |" for v in d["enum"]]
            out.append("")
            continue
        props: dict[str, Any] = d.get("properties", {})
        if not props:
            continue
        required = set(d.get("required", []))
        out += ["| key | type | default | description |", "|---|---|---|---|"]
        for key, p in props.items():
            desc = p.get("description", "")
            if not desc and "$ref" in p:
                desc = defs.get(_ref_name(p["$ref"]), {}).get("description", "")
            out.append(
                f"| `{key}` | {_cell(_type(p))} | {_cell(_default(p, key in required))} | {_cell(desc)} |"
            )
        out.append("")
    return "\n".join(out).rstrip() + "\n"
