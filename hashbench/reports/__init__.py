"""Report folders: tables, plots and one HTML page per report, written from stored runs.

:func:`write_report_folder` is the entry point (``hashbench report --output DIR``). The pieces
are in :mod:`~hashbench.reports.tables` (tables of one comparable set of runs),
:mod:`~hashbench.reports.plots` (matplotlib figures and the arrays they draw),
:mod:`~hashbench.reports.styles` (a fixed colour and marker per method) and
:mod:`~hashbench.reports.html` (the self-contained page).
"""

from hashbench.reports.folder import FILE_SUFFIXES, ReportFolder, is_folder_output, write_report_folder

__all__ = ["FILE_SUFFIXES", "ReportFolder", "is_folder_output", "write_report_folder"]
