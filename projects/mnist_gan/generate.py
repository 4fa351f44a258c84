"""`generate RUN_DIR --n 64 [--digit D] [--seed S] --out grid.png [--out-dir DIR]`: digits from the
run's SavedModel (TensorFlow alone), as a grid and, with --out-dir, one PNG each."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from projects.mnist_gan import samples
from projects.mnist_gan.data import Options
from shared import options
from shared.config import UserError
from shared.export import saved_model_of, serve_saved_model
from shared.reporting import read_json
from shared.run_folder import load_run

MAX_IMAGES = 10_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="a finished run folder (e.g. runs/mnist_gan/latest)")
    parser.add_argument("--n", type=int, default=64, help="how many digits (default: %(default)s)")
    parser.add_argument("--digit", type=int, help="the digit to draw (a --conditional run only)")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same digits")
    parser.add_argument("--out", default="grid.png", help="the grid's PNG file (default: %(default)s)")
    parser.add_argument("--out-dir", help="also write each digit as its own PNG into this folder")


def check_request(n: int, digit: int | None, conditional: bool, seed: int = 0, out: str = "grid.png") -> None:
    if not 1 <= n <= MAX_IMAGES:
        raise UserError(f"--n must be 1 to {MAX_IMAGES}; got {n}")
    if digit is not None and not conditional:
        raise UserError("--digit needs a class-conditional model; this run was trained without --conditional")
    if digit is not None and not 0 <= digit <= 9:
        raise UserError(f"--digit must be 0-9; got {digit}")
    if seed < 0:
        raise UserError(f"--seed must be 0 or more; got {seed}")
    if Path(out).suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp"):
        raise UserError(f"--out {out}: give a .png (or .jpg, .bmp) file name")


def run(args: argparse.Namespace) -> int:
    run_dir = Path(args.run)
    conditional = options.read(Options, load_run(run_dir)).conditional
    check_request(args.n, args.digit, conditional, args.seed, args.out)
    path = saved_model_of(run_dir)
    latent_dim = int(read_json(run_dir / "hparams.json")["latent_dim"])
    rng = np.random.default_rng(args.seed)
    inputs = {"latent": rng.normal(size=(args.n, latent_dim)).astype(np.float32)}
    if conditional:  # no --digit: every digit in turn
        digits = np.full(args.n, args.digit) if args.digit is not None else np.arange(args.n) % 10
        inputs["label"] = digits.astype(np.int32)
    images = serve_saved_model(path, inputs)["images"]
    out = samples.write_png(
        samples.grid(images, columns=min(args.n, 8 if args.n <= 64 else 10)), Path(args.out)
    )
    print(f"wrote {len(images)} digits to {out}")
    if args.out_dir:
        folder = Path(args.out_dir)
        for i, image in enumerate(images):
            samples.write_png(image, folder / f"digit_{i:05d}.png", scale=1)
        print(f"wrote {len(images)} PNGs to {folder}")
    return 0
