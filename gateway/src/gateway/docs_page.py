"""The API reference as one HTML page, rendered on the server from the OpenAPI document: operations
grouped by tag, their parameters, bodies and answers, every schema once, and an example of each body
made from its schema. No script and no third-party asset; the stylesheet is inline (CSP by hash)."""

from __future__ import annotations

import json
from html import escape
from typing import Any

CSS = """
:root{color-scheme:light dark;--fg:#1b1f24;--bg:#fff;--muted:#57606a;--line:#d0d7de;--code:#f3f4f6;
--accent:#0b5cad}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--muted:#9da7b3;--line:#30363d;
--code:#161b22;--accent:#58a6ff}}
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--accent)}header,main,nav{padding:0 1rem;max-width:72rem;margin:0 auto}
nav ul{list-style:none;padding:0;columns:16rem}nav li{break-inside:avoid}
code,pre{font:14px/1.4 ui-monospace,monospace;background:var(--code);border-radius:4px}
code{padding:.1em .3em}pre{padding:.75rem;overflow-x:auto;white-space:pre}
article,section.schema{border-top:1px solid var(--line);padding:.5rem 0 1rem}
.method{font-weight:700;text-transform:uppercase;margin-right:.4rem}.muted{color:var(--muted)}

.table{overflow-x:auto}table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:.3rem .5rem;border-bottom:1px solid var(--line)}
h3{font-size:1.1rem;word-break:break-all}.skip{position:absolute;left:-999px}.skip:focus{left:1rem}
"""
_REF = "#/components/schemas/"


def render_page(doc: dict[str, Any]) -> str:
    info = doc.get("info", {})
    schemas: dict[str, Any] = doc.get("components", {}).get("schemas", {})
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {t["name"]: [] for t in doc.get("tags", [])}
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            by_tag.setdefault((op.get("tags") or ["Other"])[0], []).append((method, path, op))
    tag_text = {t["name"]: t.get("description", "") for t in doc.get("tags", [])}
    nav = "".join(
        f'<li><a href="#tag-{_slug(tag)}">{escape(tag)}</a> <span class="muted">({len(ops)})</span></li>'
        for tag, ops in by_tag.items()
        if ops
    )
    sections = []
    for tag, ops in by_tag.items():
        if not ops:
            continue
        articles = "".join(_operation(method, path, op, schemas) for method, path, op in ops)
        sections.append(
            f'<section aria-labelledby="tag-{_slug(tag)}"><h2 id="tag-{_slug(tag)}">{escape(tag)}</h2>'
            f"<p>{escape(tag_text.get(tag, ''))}</p>{articles}</section>"
        )
    hooks = doc.get("webhooks", {})
    if hooks:
        by_tag.setdefault("Webhooks", [])
        sections.append(
            '<section aria-labelledby="tag-webhooks"><h2 id="tag-webhooks">Webhooks</h2>'
            f"<p>{escape(tag_text.get('Webhooks', ''))}</p>"
            + "".join(_webhook(name, item["post"], schemas) for name, item in hooks.items())
            + "</section>"
        )
        nav += '<li><a href="#tag-webhooks">Webhooks</a></li>'
    schema_list = "".join(_schema_section(name, schema) for name, schema in schemas.items())
    title = escape(info.get("title", "API"))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{CSS}</style></head><body>"
        '<a class="skip" href="#main">Skip to the reference</a>'
        f"<header><h1>{title}</h1><p>{escape(info.get('description', ''))}</p>"
        '<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI '
        f"{escape(doc.get('openapi', ''))}).</p></header>"
        f'<nav aria-label="Sections"><h2>Contents</h2><ul>{nav}'
        '<li><a href="#schemas">Schemas</a></li></ul></nav>'
        f'<main id="main">{"".join(sections)}'
        f'<section aria-labelledby="schemas"><h2 id="schemas">Schemas</h2>{schema_list}</section></main>'
        "</body></html>"
    )


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower())


def _operation(method: str, path: str, op: dict[str, Any], schemas: dict[str, Any]) -> str:
    anchor = escape(op.get("operationId", _slug(method + path)))
    parts = [
        f'<article aria-labelledby="op-{anchor}"><h3 id="op-{anchor}"><span class="method">{escape(method)}</span>'
        f"<code>{escape(path)}</code></h3><p><strong>{escape(op.get('summary', ''))}</strong></p>"
    ]
    for paragraph in op.get("description", "").split("\n\n"):
        if paragraph.strip():
            parts.append(f"<p>{escape(paragraph)}</p>")
    security = [name for entry in op.get("security", []) for name in entry]
    parts.append(f"<p>Auth: {escape(', '.join(security) or 'none')}</p>")
    params = op.get("parameters", [])
    if params:
        rows = "".join(
            f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}</td>"
            f"<td>{_type(p.get('schema', {}))}</td><td>{'yes' if p.get('required') else 'no'}</td>"
            f"<td>{escape(p.get('description', ''))}</td></tr>"
            for p in params
        )
        parts.append(
            '<h4>Parameters</h4><div class="table"><table><thead><tr><th scope="col">name</th><th scope="col">in</th>'
            '<th scope="col">type</th><th scope="col">required</th><th scope="col">description</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div>"
        )
    body = op.get("requestBody")
    if body:
        for media, content in body.get("content", {}).items():
            schema = content.get("schema", {})
            parts.append(f"<h4>Request body <span class='muted'>{escape(media)}</span></h4><p>{_type(schema)}</p>")
            parts.append(_example(schema, schemas))
    answers = []
    for status, answer in op.get("responses", {}).items():
        media = next(iter(answer.get("content", {}).items()), None)
        shown = f"{escape(media[0])}: {_type(media[1].get('schema', {}))}" if media else ""
        headers = ", ".join(f"<code>{escape(h)}</code>" for h in answer.get("headers", {}))
        answers.append(
            f"<tr><td>{escape(status)}</td><td>{escape(answer.get('description', ''))}</td><td>{shown}</td>"
            f"<td>{headers}</td></tr>"
        )
    parts.append(
        '<h4>Responses</h4><div class="table"><table><thead><tr><th scope="col">status</th><th scope="col">meaning</th>'
        '<th scope="col">body</th><th scope="col">headers</th></tr></thead>'
        f"<tbody>{''.join(answers)}</tbody></table></div>"
    )
    success = next((a for s, a in op.get("responses", {}).items() if s.startswith("2")), None)
    if success:
        for media, content in success.get("content", {}).items():
            if "json" in media:
                parts.append("<h4>Example response</h4>" + _example(content.get("schema", {}), schemas))
    parts.append("</article>")
    return "".join(parts)


def _webhook(name: str, op: dict[str, Any], schemas: dict[str, Any]) -> str:
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    return (
        f'<article aria-labelledby="hook-{_slug(name)}"><h3 id="hook-{_slug(name)}"><code>{escape(name)}</code></h3>'
        f"<p>{escape(op.get('summary', ''))}. Body: {_type(schema)}</p>{_example(schema, schemas)}</article>"
    )


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].removeprefix(_REF)
        return f'<a href="#schema-{escape(name)}">{escape(name)}</a>'
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"])
    if "const" in schema:
        return f"<code>{escape(json.dumps(schema['const']))}</code>"
    if "enum" in schema:
        return "one of " + ", ".join(f"<code>{escape(json.dumps(v))}</code>" for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"map of {_type(schema['additionalProperties'])}"
    limits = [
        f"{word} {schema[key]}"
        for key, word in (
            ("format", "format"),
            ("minimum", "≥"),
            ("maximum", "≤"),
            ("minLength", "length ≥"),
            ("maxLength", "length ≤"),
            ("pattern", "pattern"),
        )
        if key in schema
    ]
    extra = f" <span class='muted'>({escape(', '.join(limits))})</span>" if limits else ""
    return escape(str(kind)) + extra


def _schema_section(name: str, schema: dict[str, Any]) -> str:
    required = set(schema.get("required", []))
    rows = "".join(
        f"<tr><td><code>{escape(prop)}</code></td><td>{_type(sub)}</td><td>{'yes' if prop in required else 'no'}</td>"
        f"<td>{escape(sub.get('description', ''))}</td></tr>"
        for prop, sub in schema.get("properties", {}).items()
    )
    table = (
        '<div class="table"><table><thead><tr><th scope="col">field</th><th scope="col">type</th>'
        f'<th scope="col">required</th><th scope="col">description</th></tr></thead><tbody>{rows}</tbody></table></div>'
        if rows
        else f"<p>{_type(schema)}</p>"
    )
    closed = " No other fields." if schema.get("additionalProperties") is False else ""
    return (
        f'<section class="schema" aria-labelledby="schema-{escape(name)}"><h3 id="schema-{escape(name)}">'
        f"{escape(name)}</h3><p>{escape(schema.get('description', ''))}{closed}</p>{table}</section>"
    )


def _example(schema: dict[str, Any], schemas: dict[str, Any]) -> str:
    return f"<pre><code>{escape(json.dumps(example_of(schema, schemas), indent=2))}</code></pre>"


def example_of(schema: dict[str, Any], schemas: dict[str, Any], depth: int = 0) -> Any:
    """A plausible value of ``schema``, for the page's examples (depth-bounded: schemas may nest)."""
    if depth > 6:
        return None
    if "$ref" in schema:
        return example_of(schemas.get(schema["$ref"].removeprefix(_REF), {}), schemas, depth + 1)
    for key in ("example", "const", "default"):
        if key in schema and schema[key] is not None:
            return schema[key]
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"] or schema["anyOf"]
        return example_of(options[0], schemas, depth + 1)
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: example_of(sub, schemas, depth + 1) for name, sub in props.items()}
    if kind == "array":
        return [example_of(schema.get("items", {}), schemas, depth + 1)]
    if kind == "integer":
        return schema.get("minimum", 0)
    if kind == "number":
        return 0
    if kind == "boolean":
        return False
    if kind == "string":
        return {"date-time": "2026-01-31T12:00:00Z", "date": "2026-01-31"}.get(schema.get("format", ""), "string")
    return None
