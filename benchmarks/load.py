"""A bounded HTTP load from its own process: `clients` connections, each sending the same POST again as soon
as its answer arrives, for `seconds`; prints one JSON line of requests/s, latency percentiles and errors.

    python -m benchmarks.load URL BODY_FILE --clients 32 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import aiohttp
import numpy as np


async def load(url: str, body: bytes, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        stop = time.perf_counter() + seconds

        async def client() -> None:
            while time.perf_counter() < stop:
                start = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as reply:
                        await reply.read()
                        if reply.status != 200:
                            errors[str(reply.status)] = errors.get(str(reply.status), 0) + 1
                            continue
                except (aiohttp.ClientError, TimeoutError) as e:
                    errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                    continue
                latencies.append(time.perf_counter() - start)

        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - began
    milliseconds = np.array(latencies) * 1000 if latencies else np.array([np.nan])
    return {
        "clients": clients,
        "seconds": round(elapsed, 3),
        "answered": len(latencies),
        "requests_per_second": len(latencies) / elapsed,
        "p50_ms": float(np.percentile(milliseconds, 50)),
        "p99_ms": float(np.percentile(milliseconds, 99)),
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("body", help="a file holding the JSON body to POST")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    result = asyncio.run(load(args.url, Path(args.body).read_bytes(), args.clients, args.seconds))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
