"""`make bench`: every project's training speed, memory and reference comparison, on this machine.

Each project runs in a process of its own (`benchmarks.one_project`), one after another, so no two share
the cores and each peak memory is that project's. Writes benchmarks/results/<date>[-quick].json, a
Markdown table (.md) and a bar plot (.png) beside it; `--readme` also puts the table into README.md.

Needs the real datasets: --data-dir or DATA_DIR (see the top-level README). Not part of `make test`
(the tests run the same code with --smoke on generated data).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.report import write_all

RESULTS = Path(__file__).parent / "results"
PROJECTS = (
    "mnist_cnn",
    "churn_ann",
    "imdb_gru",
    "cats_dogs_vgg16",
    "stock_lstm",
    "char_lstm",
    "mnist_gan",
    "autoencoder_anomaly",
)


def machine() -> dict:
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return {
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpus": len(gpus),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }


def run_one(name: str, args: argparse.Namespace, folder: Path) -> dict:
    """One project's child process; a failure is recorded with the end of its output, not raised."""
    out = folder / f"{name}.json"
    command = [sys.executable, "-m", "benchmarks.one_project", name, "--out", str(out)]
    command += ["--repeats", str(args.repeats), "--seed", str(args.seed)]
    command += ["--data-dir", args.data_dir] if args.data_dir else []
    command += [flag for flag, on in (("--quick", args.quick), ("--smoke", args.smoke)) if on]
    command += ["--scaling", "--cpu-replicas", str(args.cpu_replicas)] if args.scaling else []
    command += ["--skip-comparison"] if args.skip_comparison else []
    command += ["--train-args", args.train_args[name]] if name in args.train_args else []
    started = time.perf_counter()
    print(f"bench: {name} ...", flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = round(time.perf_counter() - started, 1)
    if done.returncode != 0 or not out.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        print(f"bench: {name} failed after {seconds} s: {tail[0]}", flush=True)
        return {"error": tail[0], "seconds": seconds}
    result = json.loads(out.read_text())
    result["seconds"] = seconds
    print(f"bench: {name} done in {seconds} s, pipeline ratio {result['pipeline']['ratio']}", flush=True)
    return result


def run_serving(quick: bool) -> dict:
    """`make bench-serve` (benchmarks.serving) in its own process; its headline figures, or why not."""
    command = [sys.executable, "-m", "benchmarks.serving"]
    command += ["--seconds", "3", "--repeats", "1"] if quick else []
    print("bench: serving ...", flush=True)
    done = subprocess.run(command, capture_output=True, text=True)
    wrote = [line.split(" ", 1)[1] for line in done.stdout.splitlines() if line.startswith("wrote ")]
    if done.returncode != 0 or not wrote:
        reason = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"skipped": reason[0]}
    report = json.loads(Path(wrote[0]).read_text())
    figures = {"file": f"benchmarks/results/{Path(wrote[0]).name}", "models": {}}
    for name, entry in report["models"].items():
        top = max(entry["batching_off"], key=int)
        off, on = entry["batching_off"][top], entry["batching_on"][top]
        figures["models"][name] = {
            "clients": int(top),
            "off_requests_per_s": round(off["requests_per_second"], 1),
            "on_requests_per_s": round(on["requests_per_second"], 1),
            "on_p99_ms": round(on["p99_ms"], 1),
            "gain": round(on["requests_per_second"] / off["requests_per_second"], 2),
        }
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("DATA_DIR"))
    parser.add_argument("--only", nargs="+", choices=PROJECTS, metavar="PROJECT", help="these projects only")
    parser.add_argument("--quick", action="store_true", help="1 repeat, small budgets: under 10 minutes")
    parser.add_argument("--repeats", type=int, help="repeats per figure (default 3, or 1 with --quick)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--smoke", action="store_true", help="generated data, tiny budgets (the tests)")
    parser.add_argument("--skip-comparison", action="store_true", help="pipeline and memory only")
    parser.add_argument("--scaling", action="store_true", help="also 1 vs N devices and mixed precision")
    parser.add_argument("--cpu-replicas", type=int, default=0, help="with --scaling: N CPU logical devices")
    parser.add_argument(
        "--train-args",
        action="append",
        default=[],
        metavar='PROJECT="FLAGS"',
        help='more `train` flags for one project, e.g. cats_dogs_vgg16="--weights none" (repeatable)',
    )
    parser.add_argument("--skip-serving", action="store_true", help="not the serving benchmark")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--readme", type=Path, help="put the table into this README (e.g. README.md)")
    args = parser.parse_args(argv)
    if any("=" not in item for item in args.train_args):
        parser.error('--train-args takes PROJECT="FLAGS", e.g. cats_dogs_vgg16="--weights none"')
    args.train_args = dict(item.split("=", 1) for item in args.train_args)
    args.repeats = args.repeats or (1 if args.quick or args.smoke else 3)
    if not (args.data_dir or args.smoke):
        print("error: make bench needs the real datasets: pass --data-dir DIR or set DATA_DIR")
        return 2
    this_machine = machine()
    args.scaling = args.scaling or this_machine["gpus"] > 0
    started = time.perf_counter()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    results = {"date": date, "quick": args.quick, "smoke": args.smoke, "repeats": args.repeats}
    results["machine"] = this_machine
    with tempfile.TemporaryDirectory() as folder:
        results["projects"] = {name: run_one(name, args, Path(folder)) for name in args.only or PROJECTS}
    if not (args.skip_serving or args.smoke):
        results["serving"] = run_serving(args.quick)
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / f"{date}{'-quick' if args.quick else ''}{'-smoke' if args.smoke else ''}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    write_all(results, path, args.readme)
    print(path.with_suffix(".md").read_text())
    print(f"bench: {path} (and .md, .png) in {results['wall_seconds'] / 60:.1f} min")
    failed = [name for name, result in results["projects"].items() if "error" in result]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
