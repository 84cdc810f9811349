"""Write a report folder: per comparable set of runs, tables and plots, and one HTML page.

Layout under the output folder::

    index.html                                    every table and plot, self-contained
    <dataset>/<protocol>/<conventions>/table.md   the set's table, also table.csv and table.json
    <dataset>/<protocol>/<conventions>/<plot>.png pr_radius, pr_rank, precision_at_n,
                                                  map_vs_bits, map_vs_search_time

``<conventions>`` is the preset name and an 8-digit hash of the recorded conventions
(:func:`hashbench.report.conventions_slug`), so runs evaluated under different conventions never
share a table, a plot or a folder. Every file is written atomically, and ``index.html`` last.
Files of sets that an earlier report wrote and this one does not are left in place.
"""

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from hashbench import __version__
from hashbench.atomic import write_bytes_atomic, write_text_atomic
from hashbench.report import conventions_slug, select_runs, split_comparable, summarize_runs
from hashbench.reports import html as page
from hashbench.reports.plots import PLOTS
from hashbench.reports.tables import build_table, to_csv, to_json, to_markdown
from hashbench.store import canonical_json

logger = logging.getLogger(__name__)

#: Suffixes that make ``--output PATH`` a single report file instead of a folder.
FILE_SUFFIXES = (".md", ".markdown", ".csv", ".json", ".txt")

#: Name of the page in the report folder.
PAGE_NAME = "index.html"

_TABLE_WRITERS = (("table.md", to_markdown), ("table.csv", to_csv), ("table.json", to_json))


def is_folder_output(path):
    """Decide whether an output path names a report folder or a single report file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    bool
        True for an existing folder or a path without a suffix, False for a path that ends in
        one of ``FILE_SUFFIXES``.

    Raises
    ------
    ValueError
        If the path has another suffix and is not an existing folder, because it is unclear
        whether a file or a folder is meant, or if it is an existing file without a suffix.
    """
    path = Path(path)
    if path.is_dir():
        return True
    if path.suffix.lower() in FILE_SUFFIXES:
        return False
    if not path.suffix:
        if path.exists():
            raise ValueError(
                f"--output {path} is an existing file without a suffix, so it cannot become a report folder. "
                f"Name a new folder, or a file ending in one of {', '.join(FILE_SUFFIXES)}."
            )
        return True
    raise ValueError(
        f"--output {path} ends in {path.suffix!r}, which is neither a report file suffix "
        f"({', '.join(FILE_SUFFIXES)}) nor a folder name. Name a file ending in one of those suffixes, "
        "or a folder without a suffix (or an existing folder) for tables, plots and index.html."
    )


@dataclass
class SetReport:
    """What the report folder contains for one comparable set of runs.

    Attributes
    ----------
    table : hashbench.reports.tables.SetTable
    plots : list of hashbench.reports.plots.Plot
        Every plot, including those without series (not written to disk).
    folder : pathlib.Path
        The set's folder.
    files : list of pathlib.Path
        Files written for the set.
    n_runs : int
        Run records in the set.
    """

    table: object
    plots: list
    folder: Path
    files: list
    n_runs: int


@dataclass
class ReportFolder:
    """Result of :func:`write_report_folder`.

    Attributes
    ----------
    path : pathlib.Path
        The output folder.
    page : pathlib.Path
        ``index.html``.
    sets : list of SetReport
        One per dataset, protocol and set of evaluation conventions.
    warnings : list of str
        Notes shown on the page, for example that the runs form several incomparable sets.
    """

    path: Path
    page: Path
    sets: list
    warnings: list

    @property
    def files(self):
        """Every file written, the page last."""
        return [file for report in self.sets for file in report.files] + [self.page]


def _folder_part(text):
    # Dataset and protocol names are already folder-safe in the run store; keep any other value safe too.
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.") or "unnamed"


def _record_set(record):
    return record["dataset"], record["protocol"], canonical_json(record.get("conventions"))


def _describe_filters(method, dataset, n_bits, since):
    filters = []
    for name, value in (("method", method), ("dataset", dataset), ("bits", n_bits), ("since", since)):
        if value is None or value == []:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        filters.append(f"{name} {', '.join(str(item) for item in values)}")
    return "; ".join(filters) if filters else "none"


def _created_range(records):
    created = sorted(record["created"] for record in records if isinstance(record.get("created"), str))
    if not created:
        return "unknown"
    return created[0] if created[0] == created[-1] else f"{created[0]} to {created[-1]}"


def write_report_folder(records, output_dir, *, method=None, dataset=None, n_bits=None, since=None,
                        source=None, title=None):
    """Write tables, plots and the HTML page of stored runs into a folder.

    Parameters
    ----------
    records : list of dict or path-like
        Run records (with their ``curves``), or a runs folder to read them from.
    output_dir : str or os.PathLike
        Folder to write into; created when missing. Existing files of the same names are
        replaced atomically.
    method, dataset, n_bits, since : optional
        Filters, as :func:`hashbench.report.select_runs` applies them.
    source : str, optional
        Where the runs came from, for the page (default: the runs folder, or "run records").
    title : str, optional
        Page title (default: "hashbench report").

    Returns
    -------
    ReportFolder

    Raises
    ------
    ValueError
        If there are no runs, the filters match none, or the runs of one row cannot be averaged
        (see :func:`hashbench.report.summarize_runs`). Nothing is written then.
    """
    if source is None:
        source = str(records) if isinstance(records, (str, Path)) else "run records"
    selected = select_runs(records, method=method, dataset=dataset, n_bits=n_bits, since=since)
    frame = summarize_runs(selected)
    parts = split_comparable(frame)
    output_dir = Path(output_dir)

    warnings = []
    if len(parts) > 1:
        warnings.append(
            f"These runs form {len(parts)} sets of dataset, protocol and evaluation conventions. "
            "Figures from different sets are not comparable, so each set has its own tables and plots, "
            "and no figure is averaged across sets."
        )
    titles = [f"{key[0]} / {key[1]}" for key, _ in parts]

    reports, sections = [], []
    for (set_dataset, protocol, conventions), rows in parts:
        table = build_table(rows)
        set_records = [record for record in selected if _record_set(record) == (set_dataset, protocol, conventions)]
        slug = conventions_slug(conventions)
        folder = output_dir / _folder_part(set_dataset) / _folder_part(protocol) / slug
        heading = table.title if titles.count(table.title) == 1 else f"{table.title} ({slug})"

        files = []
        for name, writer in _TABLE_WRITERS:
            write_text_atomic(folder / name, writer(table))
            files.append(folder / name)
        drawn = []
        for function, source_kind in PLOTS:
            plot = function(set_records if source_kind == "records" else rows, title=table.title)
            png = plot.png() if plot.series else None
            if png is not None:
                write_bytes_atomic(folder / f"{plot.name}.png", png)
                files.append(folder / f"{plot.name}.png")
            drawn.append((plot, png))

        anchor = f"set-{len(reports) + 1}"
        relative = [file.relative_to(output_dir).as_posix() for file in files]
        sections.append((anchor, heading, page.section_html(table, drawn, relative, anchor, heading)))
        reports.append(SetReport(table, [plot for plot, _ in drawn], folder, files, len(set_records)))
        logger.info("Wrote %d files for %s (%d runs) to %s", len(files), heading, len(set_records), folder)

    intro = [
        f"{len(selected)} runs from {source}, created {_created_range(selected)}; "
        f"filters: {_describe_filters(method, dataset, n_bits, since)}. Written by hashbench {__version__}.",
        f"Sets of runs: {len(parts)} (one per dataset, protocol and evaluation conventions).",
    ]
    text = page.render_page(title=title or "hashbench report", intro=intro, warnings=warnings, sections=sections)
    page_path = output_dir / PAGE_NAME
    write_text_atomic(page_path, text)
    logger.info("Wrote %s (%.1f MB)", page_path, len(text.encode("utf-8")) / 1e6)
    return ReportFolder(path=output_dir, page=page_path, sets=reports, warnings=warnings)
