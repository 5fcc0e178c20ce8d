"""A load check for the status endpoint: well-behaved scrapers at a steady rate.

    python -m fer_pi.devtools.statusload --port 8787 --rate 50 --seconds 60 [--token-file F]

Each of ``--clients`` threads asks for /status and /metrics in turn, together ``--rate``
requests a second for ``--seconds``; prints JSON: requests, errors (any non-200 or failed
connection), and latency percentiles. Figures belong here, not in the tests.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m fer_pi.devtools.statusload",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8787)
    p.add_argument("--rate", type=float, default=50.0, help="requests a second, all clients")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--token-file", default="")
    args = p.parse_args(argv)
    headers = {}
    if args.token_file:
        with open(args.token_file) as fh:
            headers["Authorization"] = f"Bearer {fh.readline().strip()}"
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    end = time.monotonic() + args.seconds
    gap = args.clients / args.rate

    def client(k: int) -> None:
        nxt = time.monotonic() + k * gap / args.clients
        i = 0
        while nxt < end:
            time.sleep(max(0.0, nxt - time.monotonic()))
            path = ("/status", "/metrics")[i % 2]
            i += 1
            t0 = time.monotonic()
            try:
                req = urllib.request.Request(f"http://{args.host}:{args.port}{path}",
                                             headers=headers)
                with urllib.request.urlopen(req, timeout=5) as r:
                    r.read()
                    ok = r.status == 200
                err = "" if ok else f"HTTP {r.status}"
            except (urllib.error.URLError, OSError) as exc:
                err = str(exc)
            with lock:
                lat.append((time.monotonic() - t0) * 1e3)
                if err:
                    errors.append(err)
            nxt += gap

    threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    v = np.array(lat)
    out = {"requests": len(lat), "errors": len(errors), "first_errors": errors[:5],
           "rate_asked": args.rate, "seconds": args.seconds, "clients": args.clients,
           "latency_ms": {"p50": round(float(np.percentile(v, 50)), 2),
                          "p95": round(float(np.percentile(v, 95)), 2),
                          "p99": round(float(np.percentile(v, 99)), 2),
                          "max": round(float(v.max()), 2)} if len(v) else {}}
    print(json.dumps(out, indent=1))
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
