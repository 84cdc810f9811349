"""The ``hashbench`` command line: run methods, report results, list methods and datasets."""

import hashlib
import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from hashbench.atomic import write_text_atomic
from hashbench.cli_common import (
    VerboseOption,
    configure_logging as _configure_logging,
    console,
    error_console,
    fail as _fail,
    parse_int_list as _parse_int_list,
    progress_bars as _progress_bars,
)
from hashbench.paths import DATA_ROOT_ENV, default_data_root

app = typer.Typer(
    help="hashbench: learning-to-hash image retrieval benchmarks (DSTDH and baselines).",
    no_args_is_help=True,
    add_completion=False,
)
REPORT_FORMATS = ("table", "markdown", "csv", "json")


def _parse_sample(text):
    if text is None:
        return None
    values = _parse_int_list(text, "--sample")
    if len(values) != 2 or min(values) < 1:
        _fail(f"--sample expects two positive integers QUERIES,DATABASE, for example --sample 200,1000; got {text!r}.")
    return tuple(values)


def _parse_overrides(pairs):
    from hashbench.registry import parse_override

    overrides = {}
    for text in pairs:
        try:
            key, value = parse_override(text)
        except ValueError as error:
            _fail(str(error))
        overrides[key] = value
    return overrides




@app.command()
def run(
    method: str = typer.Option(..., "--method", "-m", help="Method name (see `hashbench methods`)."),
    dataset: str = typer.Option("mirflickr25k", "--dataset", "-d", help="Dataset name (see `hashbench datasets`)."),
    bits: str = typer.Option("32", "--bits", "-b", help="Comma-separated code lengths in bits, multiples of 8."),
    seeds: str = typer.Option("0", "--seeds", "-s", help="Comma-separated seeds; one run per seed."),
    data_root: Path = typer.Option(None, "--data-root", help=f"Data folder \\[default: ${DATA_ROOT_ENV}, then ./data]."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Folder of the run store."),
    cache_dir: Path = typer.Option(Path("cache"), "--cache-dir", help="Folder of the feature cache."),
    protocol: str = typer.Option(None, "--protocol", help="Protocol name \\[default: the dataset's standard one]."),
    backbone: str = typer.Option("efficientnet-lite0", "--backbone", help="Feature extractor."),
    backbone_weights: Path = typer.Option(None, "--backbone-weights", help="Local weights file of the backbone (vgg16)."),
    allow_partial: bool = typer.Option(False, "--allow-partial", help="Run on the images present when some are missing."),
    set_: list[str] = typer.Option([], "--set", help="Override a method parameter: --set key=value (repeatable)."),
    force: bool = typer.Option(False, "--force", help="Replace runs that exist already."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Images per batch in feature extraction."),
    sample: str = typer.Option(None, "--sample", help="Run on a seeded sample: QUERIES,DATABASE items, e.g. 200,1000."),
    sample_seed: int = typer.Option(0, "--sample-seed", help="Seed of the --sample draw."),
    verbose: int = VerboseOption,
):
    """Train and evaluate METHOD on a dataset for every code length and seed."""
    from hashbench.runner import RunRequest, run_grid

    _configure_logging(verbose)
    request = RunRequest(
        method=method, dataset=dataset, bits=_parse_int_list(bits, "--bits", "16,32"), seeds=_parse_int_list(seeds, "--seeds"),
        data_root=data_root or default_data_root(), runs_dir=runs_dir, cache_dir=cache_dir, protocol=protocol,
        backbone=backbone, backbone_options={"weights_path": backbone_weights} if backbone_weights else {},
        allow_partial=allow_partial, overrides=_parse_overrides(set_), force=force, batch_size=batch_size,
        sample=_parse_sample(sample), sample_seed=sample_seed,
    )

    table = Table(title=f"{method} on {dataset}", show_lines=False)
    for column in ("bits", "seed", "status", "mAP", "mAP@1000", "P@1000", "fit (s)"):
        table.add_column(column, justify="left" if column == "status" else "right")

    def show(outcome):
        m = outcome.metrics
        table.add_row(
            str(outcome.key.n_bits), str(outcome.key.seed), outcome.status,
            f"{m['map']:.4f}" if "map" in m else "-",
            f"{m['map@1000']:.4f}" if "map@1000" in m else "-",
            f"{m['precision@1000']:.4f}" if "precision@1000" in m else "-",
            f"{outcome.timings['fit_s']:.1f}" if outcome.timings else "-",
        )
        if outcome.status == "done":
            error_console.print(
                f"[green]done[/] {method} bits={outcome.key.n_bits} seed={outcome.key.seed}: mAP {m['map']:.4f}"
            )

    if not sys.stderr.isatty() and verbose == 0:
        # Progress bars draw only on a terminal, so print one line that explains the wait.
        error_console.print(
            f"Running {method} on {dataset}; the first run extracts and caches backbone features, "
            "which can take minutes. Add -v to log each step."
        )
    try:
        with _progress_bars() as progress:
            run_grid(request, progress=progress, on_outcome=show)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as error:
        _fail(str(error))
    console.print(table)
    console.print(f"Runs are stored under {runs_dir}; `hashbench report --runs-dir {runs_dir}` summarises them.")


@app.command()
def report(
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Folder of the run store."),
    fmt: str = typer.Option("table", "--format", "-f", help=f"Output format: {', '.join(REPORT_FORMATS)}."),
    output: Path = typer.Option(
        None, "--output", "-o",
        help="Write to FILE (.md, .csv, .json, .txt) instead of the terminal, or to a folder (a path without "
             "a suffix, or an existing folder) of tables, PNG plots and a self-contained index.html.",
    ),
    method: list[str] = typer.Option([], "--method", help="Only this method (repeatable, wildcards allowed)."),
    dataset: list[str] = typer.Option([], "--dataset", help="Only this dataset (repeatable)."),
    bits: str = typer.Option(None, "--bits", help="Only these code lengths, comma-separated."),
    since: str = typer.Option(
        None, "--since", help="Only runs created at or after this ISO date or time, e.g. 2026-12-01 (UTC unless an offset is given).",
    ),
    verbose: int = VerboseOption,
):
    """Summarise stored runs: mean and standard deviation over seeds of every metric."""
    from hashbench.report import format_report, parse_since, split_comparable, summarize_runs
    from hashbench.reports import is_folder_output, write_report_folder
    from hashbench.store import scan_runs

    _configure_logging(verbose)
    if fmt not in REPORT_FORMATS:
        _fail(f"--format must be one of {', '.join(REPORT_FORMATS)}, got {fmt!r}.")
    try:
        to_folder = output is not None and is_folder_output(output)
    except ValueError as error:
        _fail(str(error))
    if since is not None:
        try:
            parse_since(since)
        except ValueError:
            _fail(f"--since must be an ISO 8601 date or date and time, for example 2026-12-01 or "
                  f"2026-12-01T14:30:00+00:00; got {since!r}.")
    if to_folder and fmt != "table":
        _fail(f"--format {fmt} writes one file, but --output {output} is a folder, which gets every format. "
              f"Drop --format, or name a file such as {output}.{'md' if fmt == 'markdown' else fmt}.")
    if not Path(runs_dir).is_dir():
        _fail(f"Runs folder {runs_dir} does not exist. Run `hashbench run --method NAME` first, or pass --runs-dir.")

    filters = {
        "method": method or None,
        "dataset": dataset or None,
        "n_bits": _parse_int_list(bits, "--bits") if bits else None,
        "since": since,
    }
    try:
        scan = scan_runs(runs_dir)
        for problem in scan.problems:
            error_console.print(f"[yellow]Skipped[/] {problem.path}: {problem.reason}")
        records = scan.records if scan.records else runs_dir
        if to_folder:
            written = write_report_folder(records, output, source=str(runs_dir), **filters)
        else:
            frame = summarize_runs(records, **filters)
    except ValueError as error:
        _fail(str(error))
    except OSError as error:
        _fail(f"Reading the runs or writing the report failed: {error}. Check the paths and their permissions.")

    if to_folder:
        for note in written.warnings:
            error_console.print(f"[yellow]Note:[/] {note}")
        sets_written = f"{len(written.sets)} set{'' if len(written.sets) == 1 else 's'} of runs"
        error_console.print(f"Wrote {len(written.files)} files for {sets_written} to {output}; "
                            f"open {written.page}")
        return

    sets = len(split_comparable(frame))
    if sets > 1:
        error_console.print(
            f"[yellow]Note:[/] the runs form {sets} sets of dataset, protocol and evaluation conventions; "
            "each gets its own table, because figures from different sets are not comparable."
        )
    if fmt == "table":
        text = None
        _print_report_table(frame)
    else:
        text = format_report(frame, fmt)
    if output is not None:
        content = text if text is not None else format_report(frame, "markdown")
        write_text_atomic(output, content)
        error_console.print(f"Wrote {output}")
    elif text is not None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


@app.command()
def evaluate(
    codes_file: Path = typer.Argument(..., help="A .npz file with query_codes, db_codes, query_labels and db_labels."),
    preset: str = typer.Option(None, "--preset", help="Named conventions: hashbench (default), matlab, deephash-pytorch, thuml."),
    ties: str = typer.Option(None, "--ties", help="Order of tied items: stable, shuffle, tie-aware, unstable."),
    empty_queries: str = typer.Option(None, "--empty-queries", help="An undefined per-query figure: zero or drop."),
    topk_normaliser: str = typer.Option(None, "--topk-normaliser", help="AP@k divisor: retrieved or min-k-relevant."),
    k: str = typer.Option("100,1000,5000", "--k", help="Comma-separated rank cut-offs for mAP@k, P@N, recall@N and NDCG@k."),
    seed: int = typer.Option(None, "--seed", help="Seed of the tie order under --ties shuffle."),
    codes_format: str = typer.Option("auto", "--codes-format", help="Read codes as packed uint8, as 0/1 or -1/+1 bits, or auto."),
    fmt: str = typer.Option("table", "--format", "-f", help="Output format: table or json."),
    output: Path = typer.Option(None, "--output", "-o", help="Write the output to this file instead of the terminal."),
    curves: bool = typer.Option(False, "--curves", help="Add the precision-recall curves to the JSON output."),
    verbose: int = VerboseOption,
):
    """Score codes made by any method under named evaluation conventions."""

    from hashbench.metrics import evaluate_codes, resolve_conventions
    from hashbench.metrics.codes_file import CodesFileError, load_codes_file

    _configure_logging(verbose)
    if fmt not in ("table", "json"):
        _fail(f"--format must be table or json, got {fmt!r}.")
    if seed is not None and ties != "shuffle":
        _fail("--seed sets the tie order of --ties shuffle; add --ties shuffle or drop --seed.")
    cutoffs = _parse_int_list(k, "--k", "1000,5000")
    if min(cutoffs) < 1:
        _fail(f"--k expects positive rank cut-offs, for example --k 1000,5000; got {k!r}.")
    try:
        conventions = resolve_conventions(
            preset, ties=ties, empty_queries=empty_queries, topk_normaliser=topk_normaliser, seed=seed
        )
        arrays, read_as = load_codes_file(codes_file, codes_format=codes_format)
        with _progress_bars() as progress:
            result = evaluate_codes(
                arrays["query_codes"], arrays["db_codes"], arrays["query_labels"], arrays["db_labels"],
                conventions=conventions, map_at=cutoffs, precision_at=cutoffs, ndcg_at=cutoffs, progress=progress,
            )
    except (CodesFileError, ValueError, TypeError) as error:
        _fail(str(error))

    summary = {
        **result["metrics"],
        "conventions": result["conventions"],
        "n_queries": result["n_queries"],
        "n_database": result["n_database"],
        "n_bits": result["n_bits"],
        "n_empty_queries": result["n_empty_queries"],
        "capped": result["capped"],
        "codes_format": read_as,
    }
    if curves:
        summary["curves"] = result["curves"]
    if fmt == "json":
        text = json.dumps(summary, indent=2) + "\n"
        if output is not None:
            write_text_atomic(output, text)
            error_console.print(f"Wrote {output}")
        else:
            sys.stdout.write(text)
        return

    table = Table(title=f"{codes_file.name}: {result['n_queries']:,} queries, {result['n_database']:,} database items, {result['n_bits']} bits")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in result["metrics"].items():
        note = f" (at database size {result['capped'][name]:,})" if name in result["capped"] else ""
        table.add_row(name + note, "undefined" if value is None else f"{value:.4f}")
    named = ", ".join(f"{key} = {value}" for key, value in result["conventions"].items())
    if output is not None:
        with Console(file=None, record=True, width=200) as recorder:
            recorder.print(table)
        write_text_atomic(output, recorder.export_text() + f"Conventions: {named}\n")
        error_console.print(f"Wrote {output}")
        return
    console.print(table)
    console.print(f"Conventions: {named}")
    if result["n_empty_queries"]:
        console.print(f"{result['n_empty_queries']:,} queries have no relevant item in the database.")


# Columns of the terminal report: (header, metric column, decimals); a column absent from the
# summary is left out.
_TABLE_COLUMNS = (
    ("mAP", "map", 4),
    ("mAP@1000", "map@1000", 4),
    ("P@1000", "precision@1000", 4),
    ("NDCG@100", "ndcg@100", 4),
    ("P(r<=2)", "precision@radius2", 4),
    ("fit (s)", "fit_s", 1),
    ("encode (ms/item)", "encode_ms_per_item", 4),
    ("encode from pixels (ms/item)", "encode_pixels_ms_per_item", 1),
    ("search p50 (ms/query)", "search_p50_ms", 3),
    ("index (bytes)", "index_bytes", 0),
)


def _print_report_table(frame):
    # Runs under different evaluation conventions are not comparable, so each set gets a table.
    from hashbench.report import conventions_label, split_comparable

    for (dataset, protocol, conventions), group in split_comparable(frame):
        table = Table(
            title=f"{dataset} / {protocol}: mean ± std over seeds",
            caption=f"Evaluation conventions: {conventions_label(conventions)}",
        )
        table.add_column("method")
        table.add_column("bits", justify="right")
        table.add_column("seeds", justify="right")
        # Two parameter settings of one method get separate rows, told apart by a short hash.
        show_params = group.groupby(["method", "n_bits"])["params"].nunique().max() > 1
        if show_params:
            table.add_column("params")
        shown = [(header, column, decimals) for header, column, decimals in _TABLE_COLUMNS if column in group]
        for header, _, _ in shown:
            table.add_column(header, justify="right")
        for _, row in group.iterrows():
            cells = [str(row["method"]), str(int(row["n_bits"])), str(int(row["n_seeds"]))]
            if show_params:
                cells.append(hashlib.sha256(row["params"].encode()).hexdigest()[:8])
            for _, column, decimals in shown:
                # One seed has no spread to show.
                if int(row["n_seeds"]) == 1:
                    cells.append(f"{row[column]:.{decimals}f}")
                else:
                    std = row.get(f"{column}_std", 0.0)
                    cells.append(f"{row[column]:.{decimals}f}±{std:.{decimals}f}")
            table.add_row(*cells)
        console.print(table)


@app.command()
def methods():
    """List the registered methods."""
    from hashbench.registry import get_method_class, list_methods, load_method_definition

    table = Table(title="Methods")
    table.add_column("name")
    table.add_column("trains on")
    table.add_column("description")
    for name in list_methods():
        cls = get_method_class(name)
        try:
            description = load_method_definition(name).description
        except (FileNotFoundError, ValueError) as error:
            description = f"[red]definition error: {error}[/]"
        table.add_row(name, ", ".join(sorted(cls.requires)), description)
    console.print(table)


@app.command("fetch-weights")
def fetch_weights(
    name: str = typer.Argument(..., help="Backbone whose weights to download: vgg16."),
    directory: Path = typer.Option(Path("weights"), "--directory", help="Folder to write the weights file to."),
    base_url: str = typer.Option(None, "--base-url", help="Folder URL that serves the file \\[default: torchvision's]."),
    verbose: int = VerboseOption,
):
    """Download a backbone's official weights with a checksum check; resumes a partial download."""
    from hashbench.download import VGG16_BASE_URL, DownloadError, fetch_vgg16_weights

    _configure_logging(verbose)
    if name != "vgg16":
        _fail(f"No downloadable weights for {name!r}; only vgg16 has them (efficientnet-lite0 ships in its package).")
    try:
        with _progress_bars() as progress:
            path = fetch_vgg16_weights(directory, progress, base_url=base_url or VGG16_BASE_URL)
    except DownloadError as error:
        _fail(str(error))
    console.print(f"Saved {path}. Use it with: hashbench run --backbone vgg16 --backbone-weights {path}")


def _add_subcommands():
    from hashbench.cli_bench import bench_app
    from hashbench.cli_datasets import datasets_app

    app.add_typer(bench_app, name="bench")
    app.add_typer(datasets_app, name="datasets")


_add_subcommands()


def main():
    app()


if __name__ == "__main__":
    main()
