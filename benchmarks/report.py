"""`make bench`'s results as a Markdown table and a bar plot, and the README's table made from them.

python -m benchmarks.report benchmarks/results/<date>.json [--readme README.md]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
PIPELINE_GOAL = 0.9
MEMORY_GOAL_GIB = 8.0


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def comparison_cells(comparison: dict[str, Any] | None) -> tuple[str, str, str]:
    """(what is compared, ours, the reference) for one project's comparison."""
    if not comparison:
        return "-", "-", "-"
    ours, theirs, kind = comparison["ours"], comparison["reference_result"], comparison["kind"]
    if kind == "time_to_target":
        what = f"seconds to {comparison['target']:g} {comparison['metric']}"

        def cell(summary: dict) -> str:
            if "seconds" in summary:
                return f"{summary['seconds']:,.0f} s"
            return f"not reached ({summary.get('reached', '0/0')}; last {_number(summary.get('value'), 4)})"

        return what, cell(ours), cell(theirs)
    digits = 4 if kind == "final_metric" else 1
    return comparison["metric"], _number(ours.get("value"), digits), _number(theirs.get("value"), digits)


def budget_label(results: dict[str, Any]) -> str:
    return "--quick" if results.get("quick") else f"{results['repeats']} repeats"


def markdown_table(results: dict[str, Any]) -> str:
    rows = [
        "| project | budget | real pipeline steps/s | in-memory steps/s | ratio (goal >= 0.9) "
        "| peak memory GiB | compared on | ours | reference |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results["projects"].items():
        if "error" in result:
            rows.append(f"| {name} | | failed: {result['error']} | | | | | | |")
            continue
        pipeline = result["pipeline"]
        ratio = pipeline["ratio"]
        flag = "" if ratio >= PIPELINE_GOAL else " (below goal)"
        memory = result["peak_rss_gib"]
        what, ours, theirs = comparison_cells(result.get("comparison"))
        reference = result.get("comparison") or {}
        label = f"{theirs} ({reference['reference']})" if reference else theirs
        rows.append(
            f"| {name} | {result.get('budget_label', budget_label(results))} "
            f"| {pipeline['real_steps_per_s']:.2f} | {pipeline['synthetic_steps_per_s']:.2f} "
            f"| {ratio:.2f}{flag} | {memory:.2f}{'' if memory < MEMORY_GOAL_GIB else ' (over 8)'} "
            f"| {what} | {ours} | {label} |"
        )
    return "\n".join(rows) + "\n"


def scaling_table(results: dict[str, Any]) -> str:
    scaled = {n: r["scaling"] for n, r in results["projects"].items() if "scaling" in r}
    if not scaled:
        return ""
    rows = [
        "| project | examples/s, 1 device | N devices | efficiency | N devices, mixed float16 |",
        "|---|---|---|---|---|",
    ]
    for name, s in scaled.items():
        one, many, mixed = s["one_device_float32"], s["all_devices_float32"], s["all_devices_mixed_float16"]
        rows.append(
            f"| {name} | {one['examples_per_s']:,.0f} | {many['examples_per_s']:,.0f} ({many['replicas']}) "
            f"| {s['scaling_efficiency']:.2f} | {mixed['examples_per_s']:,.0f} |"
        )
    return "\n".join(rows) + "\n"


def serving_table(results: dict[str, Any]) -> str:
    serving = results.get("serving")
    if not serving:
        return ""
    if "skipped" in serving:
        return f"Serving: not measured ({serving['skipped']}).\n"
    rows = [
        f"Serving (`make bench-serve`, {serving['file']}), one-example requests from N clients:\n",
        "| model | clients | requests/s, batching off | batching on | gain | p99 ms, on |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in serving["models"].items():
        rows.append(
            f"| {name} | {m['clients']} | {m['off_requests_per_s']:,.0f} | {m['on_requests_per_s']:,.0f} "
            f"| {m['gain']:.1f}x | {m['on_p99_ms']:.1f} |"
        )
    return "\n".join(rows) + "\n"


def bar_plot(results: dict[str, Any], path: Path) -> None:
    """Per project: real/in-memory steps ratio, and ours' speed relative to its reference where timed."""
    names = [n for n, r in results["projects"].items() if "pipeline" in r]
    ratios = [results["projects"][n]["pipeline"]["ratio"] for n in names]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.bar(names, ratios, color=["tab:blue" if r >= PIPELINE_GOAL else "tab:red" for r in ratios])
    ax.axhline(PIPELINE_GOAL, color="black", linestyle="--", linewidth=1, label=f"goal {PIPELINE_GOAL}")
    ax.set_ylabel("real pipeline / in-memory steps/s")
    ax.set_title(f"make bench {results['date']}{' --quick' if results.get('quick') else ''}")
    ax.tick_params(axis="x", rotation=30)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def merge(files: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One results dict from several: each project from the last file holding it, labelled with its budget."""
    merged: dict[str, Any] = {**files[-1][1], "projects": {}, "sources": []}
    for name, results in files:
        command = 'make bench ARGS="--quick"' if results.get("quick") else "make bench"
        minutes = results["wall_seconds"] / 60
        merged["sources"].append(f"{name} (`{command}`, {results['date']}, {minutes:.0f} min)")
        for project, result in results["projects"].items():
            merged["projects"][project] = {**result, "budget_label": budget_label(results)}
        if "serving" in results:
            merged["serving"] = results["serving"]
    return merged


def readme_section(results: dict[str, Any], results_files: list[str]) -> str:
    machine = results["machine"]
    sources = results["sources"]
    return (
        f"{START}\n"
        f"Generated by `python -m benchmarks.report {' '.join(results_files)} --readme README.md` from "
        f"{'; '.join(sources)}: {machine['cpu_count']} CPU cores ({machine['machine']}), TensorFlow "
        f"{machine['tensorflow']}, Keras {machine['keras']}; each figure the median of its repeats.\n\n"
        + markdown_table(results)
        + "".join(f"\n{table}" for table in (scaling_table(results), serving_table(results)) if table)
        + f"{END}"
    )


def update_readme(readme: Path, section: str) -> None:
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme} has no {START} ... {END} markers to put the table between")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    readme.write_text(pattern.sub(lambda _: section, text, count=1))


def write_all(results: dict[str, Any], json_path: Path, readme: Path | None = None) -> None:
    """The JSON's Markdown table (.md) and bar plot (.png) beside it, and the README's table if asked."""
    tables = (markdown_table(results), scaling_table(results), serving_table(results))
    json_path.with_suffix(".md").write_text("\n".join(table for table in tables if table))
    bar_plot(results, json_path.with_suffix(".png"))
    if readme is not None:
        name = relative(json_path)
        update_readme(readme, readme_section(merge([(name, results)]), [name]))


def relative(path: Path) -> str:
    """A results file as the README names it: from the repository's root when it is inside it."""
    root = Path(__file__).resolve().parents[1]
    return str(path.resolve().relative_to(root)) if path.resolve().is_relative_to(root) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+")
    parser.add_argument("--readme", type=Path, help="put the table between the bench markers of this file")
    args = parser.parse_args(argv)
    if len(args.results) == 1:
        write_all(json.loads(args.results[0].read_text()), args.results[0], args.readme)
        return 0
    names = [relative(path) for path in args.results]
    merged = merge(
        [(name, json.loads(path.read_text())) for name, path in zip(names, args.results, strict=True)]
    )
    print(markdown_table(merged))
    if args.readme is not None:
        update_readme(args.readme, readme_section(merged, names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
