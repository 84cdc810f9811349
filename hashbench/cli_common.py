"""Pieces shared by the ``hashbench`` commands: consoles, progress bars, logging and errors."""

import logging
import sys
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from hashbench.progress import Progress

# Rich falls back to 80 columns when the output is not a terminal, which folds every report cell.
# A file or pipe gets wide lines instead.
console = Console(width=None if sys.stdout.isatty() else 200)
error_console = Console(stderr=True)


class RichProgressReporter(Progress):
    """Progress reporter that draws one rich progress bar per task."""

    def __init__(self, rich_progress):
        self._progress = rich_progress

    @contextmanager
    def task(self, description, total=None):
        task_id = self._progress.add_task(description, total=total)
        try:
            yield lambda count=1: self._progress.advance(task_id, count)
        finally:
            self._progress.remove_task(task_id)


@contextmanager
def progress_bars(columns=None):
    """Yield a ``Progress`` that draws rich bars, counting items unless other columns are given."""
    columns = columns or (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with RichProgress(*columns, console=error_console, transient=True) as rich_progress:
        yield RichProgressReporter(rich_progress)


def configure_logging(verbose):
    """Send log records through rich: warnings by default, info with -v, debug with -vv."""
    if verbose == 0:
        level = logging.WARNING
    elif verbose == 1:
        level = logging.INFO
    else:
        level = logging.DEBUG
    logging.basicConfig(
        level=level, format="%(message)s", datefmt="[%X]",
        handlers=[RichHandler(console=error_console, show_path=False)], force=True,
    )


def fail(message, code=2):
    """Print an error message and exit with ``code`` (2 for bad input), without a traceback."""
    error_console.print(f"[bold red]Error:[/] {message}", highlight=False)
    raise typer.Exit(code=code)


def parse_int_list(text, option, example="0,1,2"):
    """Parse a comma-separated list of integers given to ``option``, or exit with a clear message."""
    values = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            fail(f"{option} has an empty item in {text!r}; give comma-separated integers, for example {option} {example}.")
        try:
            values.append(int(part))
        except ValueError:
            fail(f"{option} expects comma-separated integers, for example {option} {example}; got {text!r}.")
    if not values:
        fail(f"{option} expects at least one integer, got {text!r}.")
    return values


VerboseOption = typer.Option(0, "--verbose", "-v", count=True, help="Log progress details: -v info, -vv debug.")
