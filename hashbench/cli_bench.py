"""The ``hashbench bench`` commands: benchmarks of the suite's components."""

import csv
import io
import json
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
from hashbench.codes import validate_n_bits

bench_app = typer.Typer(
    help="Benchmark hashbench components: search backends.",
    no_args_is_help=True,
    add_completion=False,
)

BENCH_FORMATS = ("table", "json", "csv")


@bench_app.callback()
def bench():
    """Benchmark hashbench components: search backends."""
    # A callback keeps `search` a subcommand while it is the only command of the group.


def _parse_positive_list(text, option, example):
    values = _parse_int_list(text, option, example)
    for value in values:
        if value < 1:
            _fail(f"{option} values must be positive integers, got {value} in {text!r}; for example {option} {example}.")
    return values


def _parse_bits(text):
    values = _parse_int_list(text, "--bits", "32,64,128")
    for value in values:
        try:
            validate_n_bits(value, name="--bits")
        except ValueError as error:
            _fail(str(error))
    return values


def _parse_backends(text):
    from hashbench.search import get_backend_class, list_backends

    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        _fail(f"--backends expects comma-separated backend names, for example --backends numpy,faiss-flat; got {text!r}.")
    for name in names:
        if name not in list_backends():
            _fail(f"unknown backend {name!r} in --backends; registered backends: {', '.join(list_backends())}.")
        reason = get_backend_class(name).unavailable_reason()
        if reason is not None:
            _fail(f"backend {name!r} is unavailable: {reason}")
    return names


def _check_positive(value, option):
    if value < 1:
        _fail(f"{option} must be a positive integer, got {value}.")


def _format_cell(column, value):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if column in ("qps",):
        return f"{value:,.1f}"
    if column in ("db_size", "index_bytes"):
        return f"{value:,}"
    if column in ("p50_ms", "p95_ms", "p99_ms", "build_s", "scan_gb_s"):
        return f"{value:.3f}"
    if column in ("recall", "bandwidth_fraction"):
        return f"{value:.4f}"
    return str(value)


def _render_table(result):
    from hashbench.search.bench import COLUMNS

    table = Table(title="Hamming search benchmark")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("codes", "backend") else "right")
    for row in result.rows:
        table.add_row(*(_format_cell(column, row[column]) for column in COLUMNS))
    return table


def _render_table_text(result):
    buffer = io.StringIO()
    text_console = Console(file=buffer, width=console.width, force_terminal=console.is_terminal)
    text_console.print(_render_table(result))
    if result.copy_gb_s is not None:
        text_console.print(f"Memory copy rate (np.copyto, best of 3): {result.copy_gb_s:.2f} GB/s")
    return buffer.getvalue()


def _render_json(result):
    document = {"copy_gb_s": result.copy_gb_s, "rows": result.rows}
    return json.dumps(document, indent=2) + "\n"


def _render_csv(result):
    from hashbench.search.bench import COLUMNS

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(result.rows)
    return buffer.getvalue()


@bench_app.command()
def search(
    db_size: str = typer.Option("10000,100000,1000000", "--db-size", help="Comma-separated database sizes of the random codes."),
    bits: str = typer.Option("32,64,128", "--bits", "-b", help="Comma-separated code lengths in bits, multiples of 8."),
    k: int = typer.Option(100, "--k", help="Neighbours per query; at most the smallest database."),
    backends: str = typer.Option("numpy,faiss-flat,faiss-mih", "--backends", help="Comma-separated search backends."),
    threads: str = typer.Option("1", "--threads", help="Comma-separated thread counts; each backend runs with each."),
    queries: int = typer.Option(200, "--queries", help="Queries per code set."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random codes."),
    runs_dir: Path = typer.Option(None, "--runs-dir", help="Also benchmark the codes of the runs stored in this folder."),
    batch_size: int = typer.Option(1, "--batch-size", help="Queries per search call; 1 times each query alone."),
    repetitions: int = typer.Option(3, "--repetitions", help="Runs of the query set per backend; the fastest counts."),
    copy_mb: int = typer.Option(1024, "--copy-mb", help="Buffer size in MiB of the memory copy measurement; 0 skips it."),
    output_format: str = typer.Option("table", "--format", help="Output format: table, json or csv."),
    output: Path = typer.Option(None, "--output", "-o", help="Write the output to this file instead of the terminal."),
    verbose: int = VerboseOption,
):
    """Measure queries per second, latency, build time, size and recall of the search backends."""
    from hashbench.search.bench import run_search_benchmark

    _configure_logging(verbose)
    if output_format not in BENCH_FORMATS:
        _fail(f"--format must be one of {', '.join(BENCH_FORMATS)}, got {output_format!r}.")
    db_sizes = _parse_positive_list(db_size, "--db-size", "10000,100000")
    bits_list = _parse_bits(bits)
    thread_counts = _parse_positive_list(threads, "--threads", "1,2")
    backend_names = _parse_backends(backends)
    for value, option in ((k, "--k"), (queries, "--queries"), (batch_size, "--batch-size"), (repetitions, "--repetitions")):
        _check_positive(value, option)
    if copy_mb < 0:
        _fail(f"--copy-mb must be 0 or a positive number of MiB, got {copy_mb}.")
    if seed < 0:
        _fail(f"--seed must be a non-negative integer, got {seed}.")
    if runs_dir is not None and not runs_dir.is_dir():
        _fail(f"the runs folder {runs_dir} does not exist; pass the --runs-dir of `hashbench run`.")
    if k > min(db_sizes):
        _fail(f"--k {k} exceeds the smallest --db-size {min(db_sizes)}; pass --k <= {min(db_sizes)}.")

    try:
        with _progress_bars() as progress:
            result = run_search_benchmark(
                db_sizes=db_sizes, bits=bits_list, k=k, backends=backend_names, threads=thread_counts,
                n_queries=queries, seed=seed, runs_dir=runs_dir, batch_size=batch_size,
                repetitions=repetitions, copy_bytes=copy_mb << 20, progress=progress,
            )
    except (ValueError, TypeError, ImportError, FileNotFoundError) as error:
        _fail(str(error))

    if output_format == "table":
        text = _render_table_text(result)
    elif output_format == "json":
        text = _render_json(result)
    else:
        text = _render_csv(result)
    if output is None:
        typer.echo(text, nl=False)
        return
    write_text_atomic(output, text)
    error_console.print(f"Wrote {len(result.rows)} rows to {output}")
