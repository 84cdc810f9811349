"""The report page: one self-contained HTML file with every table and plot.

Plots are embedded as base64 ``data:`` URIs and the style sheet is inline, so the page opens from
disk, can be mailed or attached as one file, and loads nothing from the network. The page has no
scripts.
"""

import base64
import html

from hashbench.reports.tables import STD_NOTE, parameter_sets, split_hashes, table_cells

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 1320px; padding: 0 1rem; color: #1a1a1a; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.3rem; margin-top: 2.5rem; border-bottom: 1px solid #ccc; }
.conventions { background: #f3f6fa; border-left: 4px solid #0072B2; padding: 0.5rem 0.8rem; }
.warning { background: #fff4e5; border-left: 4px solid #E69F00; padding: 0.5rem 0.8rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.8rem 0; }
th, td { border: 1px solid #d0d0d0; padding: 0.25rem 0.5rem; white-space: nowrap; }
th { background: #f0f0f0; } caption { text-align: left; font-weight: 600; padding: 0.2rem 0; } td.number { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.2rem 0; } figure img { max-width: 100%; height: auto; border: 1px solid #e0e0e0; }
figcaption { font-size: 0.85rem; color: #555; }
code { font-size: 0.85em; } li code { word-break: break-all; } .missing { color: #777; font-style: italic; }
"""

_PLOT_CAPTIONS = {
    "pr_radius": "Precision against recall within Hamming radius 0 to the code length (micro-averaged over queries).",
    "pr_rank": "Precision@N against recall@N over rank cut-offs N from 1 to the database size.",
    "precision_at_n": "Precision@N at the stored cut-offs N.",
    "map_vs_bits": "mAP against code length.",
    "map_vs_search_time": ("mAP against mean search time per query; the dashed step line is the Pareto "
                           "front, the circled points the settings no other point beats in both."),
}


def _escape(text):
    return html.escape(str(text), quote=True)


# Key columns of table_cells: method, bits, backbone, params, seeds.
_KEY_COUNT = 5


def _tables_html(table):
    """Render the set table as two HTML tables, retrieval figures and costs, so each fits a screen."""
    headers, rows = table_cells(table)
    parts = []
    for kind, caption in (("metric", "Retrieval quality (fractions between 0 and 1)"), ("timing", "Time and index size")):
        columns = list(range(_KEY_COUNT)) + [
            _KEY_COUNT + index for index, quantity in enumerate(table.quantities) if quantity.kind == kind
        ]
        if len(columns) == _KEY_COUNT:
            continue
        parts.append(_table_html(caption, [headers[i] for i in columns], [[row[i] for i in columns] for row in rows]))
    return "\n".join(parts)


def _table_html(caption, headers, rows):
    numeric = [index >= _KEY_COUNT - 1 or header == "bits" for index, header in enumerate(headers)]
    lines = [f'<div class="scroll"><table><caption>{_escape(caption)}</caption>', "<thead><tr>"]
    lines += [f"<th>{_escape(header)}</th>" for header in headers]
    lines.append("</tr></thead><tbody>")
    for row in rows:
        cells = "".join(
            f'<td class="number">{_escape(cell)}</td>' if numeric[index] else f"<td>{_escape(cell)}</td>"
            for index, cell in enumerate(row)
        )
        lines.append(f"<tr>{cells}</tr>")
    lines.append("</tbody></table></div>")
    return "\n".join(lines)


def _plot_html(plot, png):
    caption = _PLOT_CAPTIONS.get(plot.name, plot.title)
    if png is None:
        return f'<p class="missing">{_escape(caption)} Not drawn: no run of this set stores the figures it needs.</p>'
    data = base64.b64encode(png).decode("ascii")
    alt = f"{plot.title}: {caption}"
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_escape(alt)}">'
            f"<figcaption>{_escape(caption)} Axes: x {_escape(plot.xlabel)}; y {_escape(plot.ylabel)}.</figcaption></figure>")


def section_html(table, plots, files, anchor, heading):
    """Render one comparable set: heading, conventions, table, parameter sets, plots and file links.

    Parameters
    ----------
    table : hashbench.reports.tables.SetTable
    plots : list of (Plot, bytes or None)
        Each plot with its PNG, or None when it has no series.
    files : list of str
        Paths of the set's files relative to the page, linked below the heading.
    anchor : str
        ``id`` of the section, for the table of contents.
    heading : str
        Section heading, ``dataset / protocol`` and, when several sets share those, the
        conventions.

    Returns
    -------
    str
    """
    links = " · ".join(f'<a href="{_escape(path)}">{_escape(path.rsplit("/", 1)[-1])}</a>' for path in files)
    parameters = "".join(
        f"<li><code>{_escape(label)}</code> ({_escape(method)}): <code>{_escape(params)}</code></li>"
        for label, method, params in parameter_sets(table)
    )
    parts = [
        f'<section id="{_escape(anchor)}">',
        f"<h2>{_escape(heading)}</h2>",
        f'<p class="conventions"><strong>Evaluation conventions:</strong> {_escape(table.conventions_label)}.<br>'
        f"<strong>Split hash:</strong> {_escape(', '.join(split_hashes(table)))}</p>",
        f"<p>{_escape(STD_NOTE)}</p>",
        _tables_html(table),
        f"<p>Parameter sets:</p><ul>{parameters}</ul>",
        f"<p>Files: {links}</p>",
    ]
    parts += [_plot_html(plot, png) for plot, png in plots]
    parts.append("</section>")
    return "\n".join(parts)


def render_page(*, title, intro, warnings, sections):
    """Render the whole page.

    Parameters
    ----------
    title : str
    intro : list of str
        Paragraphs (plain text) under the title: where the runs came from and which filters apply.
    warnings : list of str
        Paragraphs (plain text) shown highlighted, for example that the runs form several
        incomparable sets.
    sections : list of (str, str, str)
        ``(anchor, heading, html)`` of each set, from :func:`section_html`.

    Returns
    -------
    str
        A complete HTML5 document.
    """
    contents = "".join(f'<li><a href="#{_escape(anchor)}">{_escape(heading)}</a></li>'
                       for anchor, heading, _ in sections)
    body = [f"<h1>{_escape(title)}</h1>"]
    body += [f"<p>{_escape(paragraph)}</p>" for paragraph in intro]
    body += [f'<p class="warning">{_escape(paragraph)}</p>' for paragraph in warnings]
    body.append(f"<ul>{contents}</ul>")
    body += [section for _, _, section in sections]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{_escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
