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

D = ServerSettings()
# flag, type, default, help: every limit with its default, as `--help` shows it
LIMITS = [
    (
        "--batch-max-size",
        int,
        D.batch_max_size,
        "join concurrent requests into calls of up to N examples (0: off)",
    ),
    ("--batch-timeout-ms", float, D.batch_timeout_ms, "how long a batch waits for more requests"),
    ("--batch-max-queue", int, D.batch_max_queue, "requests waiting per signature before 429"),
    ("--max-in-flight", int, D.max_in_flight, "predict requests being read, waiting or run before 503"),
    ("--max-body-mb", float, D.max_body_bytes / 2**20, "request body limit in MiB; 413 past it"),
    ("--max-request-examples", int, D.max_request_examples, "examples in one request; 400 past it"),
    ("--max-image-megapixels", float, D.max_image_pixels / 1e6, "largest image file accepted"),
    ("--request-timeout-ms", float, D.request_timeout_ms, "408 for a slower body, 504 for a slower answer"),
    ("--inference-threads", int, D.inference_threads, "threads running each model (default: the cores)"),
    ("--max-stream-steps", int, D.max_stream_steps, "steps one :stream request may ask for"),
    ("--drain-seconds", float, D.drain_seconds, "on SIGTERM or Ctrl-C, time left to requests in flight"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shared.serving", description=__doc__.splitlines()[0])
    add = parser.add_argument
    add(
        "--model",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a run, SavedModel or version folder",
    )
    add("--model-base-path", metavar="DIR", help="TF Serving's layout: DIR/<name>/<version>/saved_model.pb")
    add("--runs", metavar="DIR", help="serve DIR/<name>/latest of every project that has an export")
    add("--host", default=D.host, help="address to listen on (default: %(default)s, this machine only)")
    add("--port", type=int, default=D.port, help="port (default: %(default)s; 0 picks a free one)")
    add(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow this web origin (repeatable)",
    )
    add("--pages", metavar="DIR", help="project pages: DIR/<project>/page/ (default: the projects/ folder)")
    for flag, kind, default, text in LIMITS:
        add(flag, type=kind, default=default, help=f"{text} (default: %(default)g)")
    return parser


def settings_from(args: argparse.Namespace) -> ServerSettings:
    for flag, *_ in LIMITS:
        value = getattr(args, flag[2:].replace("-", "_"))
        can_be_zero = flag in ("--batch-max-size", "--batch-timeout-ms", "--drain-seconds")
        if value < 0 or (value == 0 and not can_be_zero):
            raise UserError(f"{flag} must be {'at least 0' if can_be_zero else 'positive'}, not {value:g}")
    return ServerSettings(
        host=args.host,
        port=args.port,
        batch_max_size=args.batch_max_size,
        batch_timeout_ms=args.batch_timeout_ms,
        batch_max_queue=args.batch_max_queue,
        max_in_flight=args.max_in_flight,
        max_body_bytes=int(args.max_body_mb * 2**20),
        max_request_examples=args.max_request_examples,
        max_image_pixels=int(args.max_image_megapixels * 1e6),
        request_timeout_ms=args.request_timeout_ms,
        inference_threads=args.inference_threads,
        cors_origins=tuple(args.cors_origin),
        drain_seconds=args.drain_seconds,
        max_stream_steps=args.max_stream_steps,
        pages_dir=args.pages,
    )


def serve(args: argparse.Namespace) -> None:
    settings = settings_from(args)
    listener = bind(settings.host, settings.port)  # before loading, so a busy port fails fast
    from shared.serving.app import create_app
    from shared.serving.repository import ModelRepository

    repository = ModelRepository.load(args.model, args.model_base_path, args.runs)
    for versions in repository.models.values():
        for model in versions.values():
            print(f"model {model.name} version {model.version} ({model.path})")
            for signature in model.signatures.values():
                batched = " [batched]" if settings.batch_max_size and signature.batchable else ""
                print(f"  {signature.describe()}{batched}")
    warning = exposure_warning(settings.host)
    if warning:
        print(warning, file=sys.stderr)
    listener.listen(2048)  # only now: a connection made while the models loaded would hang
    host, port = listener.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    apis = "TF Serving REST /v1/models/<name>, KServe V2 /v2/models/<name>, /metrics"
    print(f"serving on http://{shown}:{port} ({apis})", flush=True)

    import uvicorn

    app = create_app(repository, settings)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, timeout_graceful_shutdown=settings.drain_seconds
    )
    # uvicorn drains on SIGTERM / SIGINT, then raises the signal again so the process dies of it; handlers
    # that do nothing let it return instead, so a clean shutdown exits 0
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, frame: None)
    uvicorn.Server(config).run(sockets=[listener])
    print("stopped", flush=True)


def exposure_warning(host: str) -> str | None:
    """A warning when `host` lets other machines in (anything but a loopback address)."""
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        local = False
    if local:
        return None
    return f"warning: listening on {host}: other machines can reach this server, and it has no authentication"


def bind(host: str, port: int) -> socket.socket:
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
    return listener


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        serve(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sys.stderr.flush()
    # a model call that outlived the drain cannot be interrupted, and Python would wait for its thread
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
