"""The ``hashbench datasets`` commands: list, verify and download datasets.

``datasets_app`` is a Typer sub-application. Without a subcommand it lists the registered
datasets and what of them is under the data root.
"""

from pathlib import Path

import typer
from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from hashbench.cli_common import (
    VerboseOption,
    configure_logging as _configure_logging,
    console,
    fail as _fail,
    progress_bars,
)
from hashbench.paths import DATA_ROOT_ENV, default_data_root

datasets_app = typer.Typer(
    help="List, verify and download datasets.",
    invoke_without_command=True,
    add_completion=False,
)
DataRootOption = typer.Option(None, "--data-root", help=f"Data folder \\[default: ${DATA_ROOT_ENV}, then ./data].")


def _check_name(name):
    from hashbench.data import list_datasets

    known = list_datasets()
    if name not in known:
        _fail(f"Unknown dataset {name!r}. Registered datasets: {', '.join(known)}.")


@datasets_app.callback()
def datasets(ctx: typer.Context, data_root: Path = DataRootOption):
    """List the registered datasets and whether their data are under the data root."""
    if ctx.invoked_subcommand is not None:
        return
    from hashbench.data import dataset_status, list_datasets

    root = data_root or default_data_root()
    table = Table(title=f"Datasets under {root}")
    for column in ("name", "found", "items", "images present", "description", "note"):
        table.add_column(column)
    for name in list_datasets():
        try:
            status = dataset_status(name, root)
        except (FileNotFoundError, ValueError) as error:
            table.add_row(name, "no", "-", "-", "", f"Invalid definition: {error}")
            continue
        table.add_row(
            name, "yes" if status["found"] else "no",
            f"{status['n_items']:,}" if status.get("n_items") is not None else "-",
            f"{status['n_images_present']:,}" if status.get("n_images_present") is not None else "-",
            status.get("description", ""), status.get("message", ""),
        )
    console.print(table)


@datasets_app.command()
def verify(
    name: str = typer.Argument(..., help="Dataset to check, as `hashbench datasets` lists it."),
    data_root: Path = DataRootOption,
    verbose: int = VerboseOption,
):
    """Check a dataset's files, checksums, counts and split hashes; exit 1 when a check fails."""
    from hashbench.data.verify import failed, verify_dataset

    _configure_logging(verbose)
    _check_name(name)
    findings = verify_dataset(name, data_root or default_data_root())
    for finding in findings:
        console.print(finding.format(), markup=False, highlight=False, soft_wrap=True)
    n_failed = sum(finding.level == "fail" for finding in findings)
    if failed(findings):
        console.print(f"{name}: {n_failed} of {len(findings)} checks failed.", markup=False, highlight=False)
        raise typer.Exit(code=1)
    counts = {level: sum(finding.level == level for finding in findings) for level in ("ok", "warn", "skip")}
    console.print(
        f"{name}: no check failed ({counts['ok']} passed, {counts['warn']} with a warning, "
        f"{counts['skip']} skipped).",
        markup=False, highlight=False,
    )


@datasets_app.command()
def download(
    name: str = typer.Argument(..., help="Dataset whose official archives to download."),
    data_root: Path = DataRootOption,
    base_url: str = typer.Option(
        None, "--base-url", help="Folder URL of a mirror serving the official file names \\[default: the official URLs].",
    ),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait for the connection and for each read."),
    verbose: int = VerboseOption,
):
    """Download a dataset's official archives with a SHA-256 check; resumes a partial download."""
    from hashbench.data.download import download_dataset
    from hashbench.download import DownloadError

    _configure_logging(verbose)
    _check_name(name)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    try:
        with progress_bars(columns) as byte_progress:
            results = download_dataset(
                name, data_root or default_data_root(), base_url=base_url, progress=byte_progress,
                timeout=timeout,
            )
    except (DownloadError, ValueError) as error:
        _fail(str(error))
    for result in results:
        state = "SHA-256 verified" if result.verified else "SHA-256 not pinned by the definition, not verified"
        console.print(f"{result.path}: {state} ({result.sha256})", markup=False, highlight=False, soft_wrap=True)
    console.print(f"Check the files with: hashbench datasets verify {name}", markup=False, highlight=False)
