"""HTML building blocks of the report: escaped text, tables, inlined images, the page itself.

Everything the page needs is inlined: the style sheet, the script of the
embedding map, and every image as a `data:` URI, so the file opens without a
network and can be attached or archived alone.

Example:

>>> table(["metric", "value"], [["EER", "2.00%"]])
'<table><thead><tr><th>metric</th><th>value</th></tr></thead><tbody><tr><td>EER</td><td>2.00%</td></tr></tbody></table>'
"""

import base64
import html
import json
import pathlib

_ASSETS = pathlib.Path(__file__).resolve().parent / "assets"


def esc(value):
    """`value` as HTML-escaped text."""
    return html.escape(str(value), quote=True)


def data_uri(png_bytes):
    """A `data:` URI of PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(png_bytes).decode("ascii")


def img(uri, alt, cls=None, title=None):
    """An `<img>` of a data URI."""
    extra = (f' class="{esc(cls)}"' if cls else "") + (f' title="{esc(title)}"' if title else "")
    return f'<img src="{uri}" alt="{esc(alt)}"{extra}>'


def table(header, rows, row_classes=None, cls=None):
    """A `<table>` of already-formatted cells (no header row when `header` is None); cells are escaped unless `Raw`."""

    def cell(tag, value):
        return f"<{tag}>{value if isinstance(value, Raw) else esc(value)}</{tag}>"

    head = "" if header is None else "<thead><tr>" + "".join(cell("th", h) for h in header) + "</tr></thead>"
    body = []
    for i, row in enumerate(rows):
        row_cls = row_classes[i] if row_classes else None
        attr = f' class="{esc(row_cls)}"' if row_cls else ""
        body.append(f"<tr{attr}>" + "".join(cell("td", v) for v in row) + "</tr>")
    attr = f' class="{esc(cls)}"' if cls else ""
    return f"<table{attr}>{head}<tbody>{''.join(body)}</tbody></table>"


class Raw(str):
    """HTML that `table` and `section` insert as it is."""


def section(key, title, body):
    """One `<section>` of the report, with the anchor `key`."""
    return f'<section id="{esc(key)}" class="report-section"><h2>{esc(title)}</h2>{body}</section>'


def note(text, kind="note"):
    """A paragraph of explanation (`note`) or of something left out (`missing`)."""
    return f'<p class="{kind}">{esc(text)}</p>'


def pct(value):
    return f"{100 * value:.2f}%"


def json_script(element_id, data):
    """Data for the page's script, as a JSON `<script>` element (`</` escaped)."""
    text = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return f'<script type="application/json" id="{esc(element_id)}">{text}</script>'


def page(title, sections, missing, subtitle=""):
    """The whole HTML document.

    Args:
        title: the page title.
        sections: `(key, title, html)` of each section, in order.
        missing: lines saying what was left out and why.
        subtitle: a line under the title.
    """
    css = (_ASSETS / "report.css").read_text(encoding="utf-8")
    script = (_ASSETS / "report.js").read_text(encoding="utf-8")
    nav = "".join(f'<a href="#{esc(key)}">{esc(name)}</a>' for key, name, _ in sections)
    left_out = ""
    if missing:
        items = "".join(f"<li>{esc(line)}</li>" for line in missing)
        left_out = f'<div id="left-out" class="missing"><strong>Left out of this report</strong><ul>{items}</ul></div>'
    body = "".join(section(key, name, content) for key, name, content in sections)
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{esc(title)}</title>"
        f"<style>{css}</style></head><body><header><h1>{esc(title)}</h1>"
        f"<p class=\"muted\">{esc(subtitle)}</p><nav>{nav}</nav></header><main>{left_out}{body}</main>"
        f"<script>{script}</script></body></html>\n"
    )
