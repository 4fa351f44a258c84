"""`python -m shared.serving`: serve SavedModels over TF Serving's REST API and KServe V2.

    python -m shared.serving --model mnist_cnn=runs/mnist_cnn/latest [--model NAME=PATH ...]
    python -m shared.serving --model-base-path serving/          # TF Serving's <name>/<version>/ layout
    python -m shared.serving --runs runs                         # runs/<name>/latest of every project

Startup prints each model, its version and signatures, then the address. SIGTERM or Ctrl-C stops taking
connections, lets the requests in flight finish (up to --drain-seconds), then exits.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import socket
import sys

from shared.config import UserError
from shared.serving.dataplane import ServerSettings


def build_parser() -> argparse.ArgumentParser:
    d = ServerSettings()
    parser = argparse.ArgumentParser(prog="python -m shared.serving", description=__doc__.splitlines()[0])
    add = parser.add_argument
    add(
        "--model",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a run folder, SavedModel or version folder",
    )
    add("--model-base-path", metavar="DIR", help="TF Serving's layout: DIR/<name>/<version>/saved_model.pb")
    add("--runs", metavar="DIR", help="serve DIR/<name>/latest of every project that has an export")
    add("--host", default=d.host, help="address to listen on (default: %(default)s, this machine only)")
    add("--port", type=int, default=d.port, help="port (default: %(default)s; 0 picks a free one)")
    add(
        "--batch-max-size",
        type=int,
        default=d.batch_max_size,
        help="join requests into batches of up to N examples (0: off)",
    )
    add(
        "--batch-timeout-ms",
        type=float,
        default=d.batch_timeout_ms,
        help="how long a batch waits for more requests (default: %(default)s)",
    )
    add(
        "--batch-max-queue",
        type=int,
        default=d.batch_max_queue,
        help="requests waiting per signature before 429 (default: %(default)s)",
    )
    add(
        "--max-in-flight",
        type=int,
        default=d.max_in_flight,
        help="predict requests answered at once before 503 (default: %(default)s)",
    )
    add(
        "--max-body-mb",
        type=float,
        default=d.max_body_bytes / 2**20,
        help="request body limit in MiB, 413 past it (default: %(default)g)",
    )
    add(
        "--max-image-megapixels",
        type=float,
        default=d.max_image_pixels / 1e6,
        help="largest image accepted (default: %(default)g)",
    )
    add(
        "--request-timeout-ms",
        type=float,
        default=d.request_timeout_ms,
        help="504 past this (default: %(default)g)",
    )
    add(
        "--inference-threads",
        type=int,
        default=d.inference_threads,
        help="threads running models (default: %(default)s, the cores)",
    )
    add(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow this web origin (repeatable; default: none)",
    )
    add(
        "--drain-seconds",
        type=float,
        default=d.drain_seconds,
        help="on SIGTERM, time for requests in flight (default: %(default)g)",
    )
    return parser


def settings_from(args: argparse.Namespace) -> ServerSettings:
    for flag in ("batch_max_size", "batch_timeout_ms", "max_body_mb", "request_timeout_ms", "drain_seconds"):
        if getattr(args, flag) < 0:
            raise UserError(f"--{flag.replace('_', '-')} cannot be negative")
    for flag in ("batch_max_queue", "max_in_flight", "inference_threads", "max_image_megapixels"):
        if getattr(args, flag) <= 0:
            raise UserError(f"--{flag.replace('_', '-')} must be positive")
    return ServerSettings(
        host=args.host,
        port=args.port,
        batch_max_size=args.batch_max_size,
        batch_timeout_ms=args.batch_timeout_ms,
        batch_max_queue=args.batch_max_queue,
        max_in_flight=args.max_in_flight,
        max_body_bytes=int(args.max_body_mb * 2**20),
        max_image_pixels=int(args.max_image_megapixels * 1e6),
        request_timeout_ms=args.request_timeout_ms,
        inference_threads=args.inference_threads,
        cors_origins=tuple(args.cors_origin),
        drain_seconds=args.drain_seconds,
    )


def serve(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    listener = open_socket(settings.host, settings.port)  # before loading: a busy port fails fast
    from shared.serving.app import create_app
    from shared.serving.repository import ModelRepository

    repository = ModelRepository.load(args.model, args.model_base_path, args.runs, log=lambda text: None)
    for versions in repository.models.values():
        for model in versions.values():
            print(f"model {model.name} version {model.version} ({model.path})")
            for signature in model.signatures.values():
                batched = " [batched]" if settings.batch_max_size and signature.batchable else ""
                print(f"  {signature.describe()}{batched}")
    warning = exposure_warning(settings.host)
    if warning:
        print(warning, file=sys.stderr)
    host, port = listener.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(
        f"serving on http://{shown}:{port} "
        "(TF Serving REST /v1/models/<name>, KServe V2 /v2/models/<name>, /metrics)",
        flush=True,
    )

    import uvicorn

    config = uvicorn.Config(
        create_app(repository, settings),
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=settings.drain_seconds,
    )
    # uvicorn drains on SIGTERM / SIGINT, then raises the signal again so the process dies of it; handlers
    # that do nothing let it return instead, and the server exits 0 after a clean shutdown
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, frame: None)
    uvicorn.Server(config).run(sockets=[listener])
    print("stopped", flush=True)
    return 0


def exposure_warning(host: str) -> str | None:
    """A warning when `host` lets other machines in (anything but a loopback address)."""
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        local = False
    if local:
        return None
    return f"warning: listening on {host}: other machines can reach this server, and it has no authentication"


def open_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they are TCP, and
    # with Nagle on, a kept-alive connection waits 40 ms on every answer for the client's delayed ACK
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as e:
        listener.close()
        raise UserError(
            f"cannot listen on {host}:{port}: {e.strerror}; pick another --port or --host"
        ) from None
    listener.listen(2048)
    return listener


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return serve(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
