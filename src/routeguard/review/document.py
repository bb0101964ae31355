"""A tiny document model rendered twice: Markdown for report.md, self-contained HTML for report.html."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

__all__ = ["Doc", "render_html", "render_markdown"]


Table = tuple[list[str], list[list[str]]]
Image = tuple[Path, str]


@dataclass(slots=True)
class Doc:
    blocks: list[tuple[str, str | list[str] | Table | Image]] = field(default_factory=list)

    def h(self, level: int, text: str) -> None:
        self.blocks.append((f"h{level}", text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def ul(self, items: list[str]) -> None:
        if items:
            self.blocks.append(("ul", items))

    def table(self, headers: list[str], rows: list[list[str]]) -> None:
        self.blocks.append(("table", (headers, rows)))

    def img(self, path: Path, alt: str) -> None:
        self.blocks.append(("img", (path, alt)))


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(doc: Doc) -> str:
    out: list[str] = []
    for kind, value in doc.blocks:
        if kind.startswith("h"):
            out.append("#" * int(kind[1:]) + " " + str(value))
        elif kind == "p":
            out.append(str(value))
        elif kind == "ul":
            assert isinstance(value, list)
            out.append("\n".join(f"- {item}" for item in value))
        elif kind == "table":
            headers, rows = cast(Table, value)
            lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
            out.append("\n".join(lines))
        elif kind == "img":
            path, alt = cast(Image, value)
            out.append(f"![{alt}]({Path(path).name})")
        out.append("")
    return "\n".join(out)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:0.8em 0;font-size:0.86em}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f3f3} tr:nth-child(even) td{background:#fafafa}
code{background:#f3f3f3;padding:0 3px} img{max-width:100%;border:1px solid #eee;margin:0.5em 0}
h1{font-size:1.6em} h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #eee}
"""


def _inline(text: str) -> str:
    """Escape, then render `code` and **bold** spans."""
    escaped = html.escape(text)
    parts = escaped.split("`")
    escaped = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    parts = escaped.split("**")
    return "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))


def render_html(doc: Doc, title: str, embed: bool = True) -> str:
    out = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
    ]
    for kind, value in doc.blocks:
        if kind.startswith("h"):
            out.append(f"<{kind}>{_inline(str(value))}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{_inline(str(value))}</p>")
        elif kind == "ul":
            assert isinstance(value, list)
            out.append("<ul>" + "".join(f"<li>{_inline(str(i))}</li>" for i in value) + "</ul>")
        elif kind == "table":
            headers, rows = cast(Table, value)
            head = "".join(f"<th>{_inline(h)}</th>" for h in headers)
            body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "img":
            path, alt = cast(Image, value)
            p = Path(path)
            src = p.name
            if embed and p.is_file():
                src = "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode("ascii")
            out.append(
                f"<figure><img src='{src}' alt='{html.escape(alt)}'><figcaption>{html.escape(alt)}"
                "</figcaption></figure>"
            )
    out.append("</body></html>")
    return "\n".join(out)
