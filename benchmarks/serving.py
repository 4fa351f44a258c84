"""`make bench-serve`: the model server under a bounded load on 127.0.0.1, batching off and on.

For each model (mnist_cnn and imdb_gru by default, from `runs/<name>/latest`): one server process per setting,
and from a second process (`benchmarks.load`) N clients each sending a one-example request again as soon as
its answer arrives. Reported: requests/s, p50 and p99 latency, errors and the mean examples per model call,
each the median of --repeats runs; beside them the SavedModel called in this process one example at a time
and 32 at a time, the ceilings a server's overhead comes off. JSON to benchmarks/results/, a table printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
REPO = Path(__file__).resolve().parent.parent
# about the length of an average IMDB review (230 words)
REVIEW = " ".join(
    ["This film surprised me: a sharp script, a cast that clearly enjoyed the material, and a score that"]
    + ["never gets in the way. The middle drags a little, but the last act more than makes up for it."] * 10
)
SETTINGS = {"off": (), "on": ("--batch-max-size", "32")}  # "on": the server's batching flags (--batching)


def example(name: str) -> dict[str, np.ndarray]:
    """One request's inputs for a model."""
    if name == "mnist_cnn":
        return {"images": np.random.default_rng(0).integers(0, 256, (1, 28, 28)).astype(np.uint8)}
    if name == "imdb_gru":
        return {"text": np.array([REVIEW], dtype=object)}
    raise ValueError(f"no example request for {name}; the benchmark knows mnist_cnn and imdb_gru")


def body_of(inputs: dict[str, np.ndarray]) -> bytes:
    (value,) = inputs.values()
    rows = [v.decode() if isinstance(v, bytes) else v for v in value.tolist()]
    return json.dumps({"instances": rows}).encode()


def in_process(saved_model: Path, inputs: dict[str, np.ndarray], batch: int, seconds: float) -> float:
    """Examples per second through the SavedModel's signature, `batch` examples per call, no server."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    batched = {k: tf.constant(np.concatenate([v] * batch)) for k, v in inputs.items()}
    signature(**batched)
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        signature(**batched)
        calls += 1
    return calls * batch / (time.perf_counter() - start)


def start_server(name: str, run_dir: Path, setting: tuple[str, ...]) -> tuple[subprocess.Popen, str]:
    command = [
        sys.executable,
        "-m",
        "shared.serving",
        "--port",
        "0",
        "--model",
        f"{name}={run_dir}",
        *setting,
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    for line in server.stdout:
        if line.startswith("serving on "):
            return server, line.split()[2]
    raise RuntimeError(f"the server for {name} did not start (exit code {server.wait()})")


def run_load(url: str, body: Path, clients: int, seconds: float) -> dict:
    command = [sys.executable, "-m", "benchmarks.load", url, str(body), "--clients", str(clients)]
    result = subprocess.run(
        [*command, "--seconds", str(seconds)], capture_output=True, text=True, cwd=REPO, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def batch_counts(base_url: str, name: str) -> tuple[float, float]:
    """(examples, model calls) so far, from the server's /metrics."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=30) as reply:
        text = reply.read().decode()
    total = re.search(rf'serving_batch_size_sum{{model="{name}"}} (\S+)', text)
    count = re.search(rf'serving_batch_size_count{{model="{name}"}} (\S+)', text)
    return float(total.group(1)), float(count.group(1))


def measured_load(url: str, name: str, body: Path, clients: int, seconds: float) -> dict:
    """One load, with the mean examples per model call the server made during it."""
    before = batch_counts(url, name)
    result = run_load(f"{url}/v1/models/{name}:predict", body, clients, seconds)
    after = batch_counts(url, name)
    result["examples_per_model_call"] = (after[0] - before[0]) / max(after[1] - before[1], 1)
    return result


def measure(name: str, run_dir: Path, setting: str, clients: list[int], seconds: float, repeats: int) -> dict:
    """Loads of each client count on a fresh server with this batching setting: medians over repeats."""
    body = Path(tempfile.mkdtemp()) / "body.json"
    body.write_bytes(body_of(example(name)))
    server, url = start_server(name, run_dir, SETTINGS[setting])
    try:
        run_load(f"{url}/v1/models/{name}:predict", body, max(clients), 2)  # warm-up: first calls, pools
        results = {}
        keys = ("requests_per_second", "p50_ms", "p99_ms", "examples_per_model_call")
        for count in clients:
            runs = [measured_load(url, name, body, count, seconds) for _ in range(repeats)]
            median = {k: statistics.median(r[k] for r in runs) for k in keys}
            errors = sum(sum(r["errors"].values()) for r in runs)
            results[str(count)] = {**median, "errors": errors, "runs": runs}
        return results
    finally:
        server.terminate()
        server.wait(timeout=60)
        body.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=RUN_DIR",
        help="default: mnist_cnn and imdb_gru from runs/<name>/latest",
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of one measured load")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--batching", default=" ".join(SETTINGS["on"]), help='server flags of "on" (default: %(default)s)'
    )
    args = parser.parse_args()
    SETTINGS["on"] = tuple(args.batching.split())
    models = dict(m.split("=", 1) for m in args.model) or {
        name: str(REPO / "runs" / name / "latest") for name in ("mnist_cnn", "imdb_gru")
    }
    for name, run_dir in models.items():
        if not (Path(run_dir) / "saved_model" / "saved_model.pb").is_file():
            print(f"error: {run_dir} has no saved_model; train it first: make train-{name}", file=sys.stderr)
            return 2
    report = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "models": {}}
    for name, run_dir in models.items():
        saved_model = Path(run_dir) / "saved_model"
        entry = {
            "in_process_examples_per_second": {
                str(b): in_process(saved_model, example(name), b, args.seconds / 2) for b in (1, 32)
            }
        }
        for setting in SETTINGS:
            entry[f"batching_{setting}"] = measure(
                name, Path(run_dir), setting, args.clients, args.seconds, args.repeats
            )
        report["models"][name] = entry
        print_table(name, entry, args.clients)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"serving-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")
    return 0


def print_table(name: str, entry: dict, clients: list[int]) -> None:
    ceiling = entry["in_process_examples_per_second"]
    print(
        f"\n{name}: in-process {ceiling['1']:.0f} examples/s one at a time, {ceiling['32']:.0f} at 32 a call"
    )
    print("| batching | clients | requests/s | p50 ms | p99 ms | errors | examples per model call |")
    print("|---|---|---|---|---|---|---|")
    for setting in SETTINGS:
        result = entry[f"batching_{setting}"]
        for count in clients:
            r = result[str(count)]
            rate, p50, p99 = r["requests_per_second"], r["p50_ms"], r["p99_ms"]
            batch = r["examples_per_model_call"]
            print(
                f"| {setting} | {count} | {rate:.0f} | {p50:.1f} | {p99:.1f} | {r['errors']} | {batch:.1f} |"
            )
    top = str(max(clients))
    gain = (
        entry["batching_on"][top]["requests_per_second"] / entry["batching_off"][top]["requests_per_second"]
    )
    print(f"batching on / off at {top} clients: {gain:.1f}x requests/s")


if __name__ == "__main__":
    sys.exit(main())
