"""A local HTTP status endpoint: GET /status (JSON) and GET /metrics (Prometheus text).

The figures are the health file's (health.HealthState.snapshot), read on each request
from the loop's latest update. Standard library only (http.server): two read-only
routes do not justify a web framework on a Pi. Bound to 127.0.0.1 unless configured;
with a token, every request must carry it as ``Authorization: Bearer TOKEN`` (what
Prometheus sends with ``authorization: credentials_file``). Plain HTTP: on an untrusted
network put a TLS proxy in front.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fer_pi import __version__
from fer_pi.outputs.health import HealthState, prometheus

log = logging.getLogger(__name__)

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _handler(state: HealthState, token: str | None):
    expected = f"Bearer {token}".encode() if token else None

    class Handler(BaseHTTPRequestHandler):
        server_version = f"fer-pi/{__version__}"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            if expected is not None and not hmac.compare_digest(
                    self.headers.get("Authorization", "").encode(), expected):
                self._send(401, "application/json", '{"error": "unauthorized"}\n',
                           {"WWW-Authenticate": 'Bearer realm="fer-pi"'})
            elif path == "/status":
                snap = state.snapshot()
                snap["version"] = __version__
                self._send(200, "application/json", json.dumps(snap, indent=1) + "\n")
            elif path == "/metrics":
                self._send(200, PROMETHEUS_TYPE, prometheus(state.snapshot()))
            elif path == "/":
                self._send(200, "application/json", '{"routes": ["/status", "/metrics"]}\n')
            else:
                self._send(404, "application/json", '{"error": "not found"}\n')

        def _send(self, code: int, ctype: str, body: str,
                  headers: dict[str, str] | None = None) -> None:
            data = body.encode()
            self.send_response(code)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt: str, *args) -> None:
            log.debug("status: %s " + fmt, self.address_string(), *args)

    return Handler


class StatusServer:
    """Serves on a daemon thread; a port already in use is logged and retried, since the
    board matters more than its status page."""

    def __init__(self, host: str, port: int, state: HealthState, retry_max_s: float = 60.0,
                 token: str | None = None):
        self.host, self.port, self.state, self.retry_max_s = host, port, state, retry_max_s
        self.token = token
        self.httpd: ThreadingHTTPServer | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="status-http", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            try:
                httpd = ThreadingHTTPServer((self.host, self.port),
                                            _handler(self.state, self.token))
            except OSError as exc:
                log.error("status: cannot listen on %s:%d: %s; retrying in %.0f s", self.host,
                          self.port, exc.strerror or exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, self.retry_max_s)
                continue
            httpd.daemon_threads = True
            with self._lock:  # close() either sees this server or stops it from serving
                if self._stop.is_set():
                    httpd.server_close()
                    return
                self.httpd = httpd
            log.info("status: http://%s:%d/status and /metrics", self.host,
                     httpd.server_address[1])
            if self.token is None and not self.host.startswith(("127.", "localhost", "::1")):
                log.warning("status: listening on %s with no token_file: anyone who can reach "
                            "it can read it", self.host)
            httpd.serve_forever(poll_interval=0.2)
            httpd.server_close()
            return

    def close(self) -> None:
        with self._lock:
            self._stop.set()
            httpd = self.httpd
        if httpd is not None:
            httpd.shutdown()  # returns once serve_forever has ended
        if self._thread is not None:
            self._thread.join(timeout=2)
