"""A local HTTP status endpoint: the room's page (GET /, HTML), GET /status (JSON),
GET /history (the shown labels per minute and hour, JSON) and GET /metrics (Prometheus).

The figures are the health file's (health.HealthState.snapshot), read on each request
from the loop's latest update, with the room's faces, restarts and history (roomlog). Bound
to 127.0.0.1 unless configured; with a token, every request must carry it as
``Authorization: Bearer TOKEN`` (what Prometheus sends with ``authorization:
credentials_file``), or the session cookie a browser gets by signing in with it on the page
(POST /login: page.py says why a form). Plain HTTP: on an untrusted network put a TLS proxy
in front.

Built to hold up to a hostile network on a Pi: one thread and an asyncio loop serve every
connection (a thousand idle clients cost kilobytes, not a thousand threads); the request
must arrive whole within ``read_timeout_s`` and fit in ``MAX_HEAD`` bytes (a sign-in's body
in ``MAX_BODY``), the reply must go out within ``write_timeout_s``; at most
``max_connections`` are open at once, and a new one beyond that (256 by default) takes the
place of the oldest that has not sent its request yet (a slow or silent client), or is
refused at once with 503 when every open one is being answered. A client that goes away is
counted and logged at debug level, never as a traceback.
Hand-written on asyncio's streams (standard library): a few small routes do not justify a
web framework on a Pi, and http.server gives each connection a thread that waits without
limit.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import logging
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

from fer_pi import __version__
from fer_pi.outputs import page
from fer_pi.outputs.health import HealthState, prometheus
from fer_pi.outputs.roomlog import RoomLog

log = logging.getLogger(__name__)

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_HEAD = 8192  # request line and headers: a GET from a browser or Prometheus is < 1 KB
MAX_BODY = 1024  # a sign-in form: the token and its name
JSON = "application/json"
REASONS = {200: "OK", 303: "See Other", 400: "Bad Request", 401: "Unauthorized",
           404: "Not Found", 405: "Method Not Allowed", 413: "Content Too Large",
           431: "Request Header Fields Too Large", 503: "Service Unavailable"}
_DISCONNECTS = (ConnectionError, BrokenPipeError, asyncio.IncompleteReadError)


@dataclass
class Counters:
    """What happened to connections, for /metrics and the health file."""

    served: int = 0  # requests answered (any status)
    refused: int = 0  # beyond max_connections with none to evict: 503 at once
    timed_out: int = 0  # the request or the reply took longer than allowed
    evicted: int = 0  # an idle connection closed to make room for a new one
    disconnected: int = 0  # the client went away before its reply was out
    too_large: int = 0  # a request head over MAX_HEAD
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)

    def to_dict(self) -> dict:
        with self.lock:
            return {k: getattr(self, k) for k in ("served", "refused", "timed_out", "evicted",
                                                  "disconnected", "too_large")}


class _Conn:
    """One open connection: whether its request is in yet (only those still waiting for
    one may be evicted)."""

    __slots__ = ("writer", "opened", "answering", "task")

    def __init__(self, writer: asyncio.StreamWriter, task: asyncio.Task | None):
        self.writer, self.task = writer, task
        self.opened = time.monotonic()
        self.answering = False


class BodyError(Exception):
    """A request body that cannot be read: its HTTP status and why."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]


def parse_head(head: bytes) -> Request | None:
    """The request line and headers (names lower-cased); None for what is not HTTP."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return Request(parts[0], parts[1], headers)


def bearer_token(authorization: str) -> bytes:
    """The token of an Authorization header; the scheme's name is case-insensitive (RFC 7235:
    'bearer' and 'BEARER' are 'Bearer'); b'' for any other scheme."""
    scheme, _sep, token = authorization.strip().partition(" ")
    return token.strip().encode("latin-1") if scheme.lower() == "bearer" else b""


class StatusServer:
    """Serves on a daemon thread; a port already in use is logged and retried, since the
    board matters more than its status page."""

    def __init__(self, host: str, port: int, state: HealthState, retry_max_s: float = 60.0,
                 token: str | None = None, max_connections: int = 256,
                 read_timeout_s: float = 5.0, write_timeout_s: float = 5.0,
                 room: RoomLog | None = None):
        self.host, self.port, self.state, self.retry_max_s = host, port, state, retry_max_s
        self.room = room
        self.token = token
        self.max_connections = max_connections
        self.read_timeout_s, self.write_timeout_s = read_timeout_s, write_timeout_s
        self.counters = Counters()
        self._expected = token.encode() if token else None
        self._session = page.session_value(self._expected) if self._expected else ""
        self._conns: dict[int, _Conn] = {}  # insertion order: oldest first
        self._keys = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self.bound_port: int | None = None
        state.status_server = self.counters.to_dict  # for /metrics and health

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="status-http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:  # the loop has ended already
                pass
        if self._thread is not None:
            self._thread.join(timeout=3)

    # -- the server thread -------------------------------------------------------------
    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        if self._closed.is_set():
            return
        delay = 1.0
        while True:
            try:
                server = await asyncio.start_server(self._accept, self.host, self.port,
                                                    limit=MAX_HEAD, backlog=128)
                break
            except OSError as exc:
                log.error("status: cannot listen on %s:%d: %s; retrying in %.0f s", self.host,
                          self.port, exc.strerror or exc, delay)
                try:
                    await asyncio.wait_for(self._stopping.wait(), delay)
                    return  # closed while waiting
                except TimeoutError:
                    delay = min(delay * 2, self.retry_max_s)
        self.bound_port = server.sockets[0].getsockname()[1]
        log.info("status: http://%s:%d/ (the room's page), /status and /metrics", self.host,
                 self.bound_port)
        if self.token is None and not self.host.startswith(("127.", "localhost", "::1")):
            log.warning("status: listening on %s with no token_file: anyone who can reach it "
                        "can read it", self.host)
        async with server:
            await self._stopping.wait()
            server.close()
            tasks = [c.task for c in self._conns.values() if c.task is not None]
            for conn in list(self._conns.values()):
                conn.writer.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._conns) >= self.max_connections and not self._evict_one():
            self.counters.add("refused")
            await self._refuse(writer)
            return
        key = next(self._keys)
        conn = _Conn(writer, asyncio.current_task())
        self._conns[key] = conn
        try:
            await self._handle(reader, writer, conn)
        except asyncio.CancelledError:
            pass  # evicted, or the server is stopping
        finally:
            self._conns.pop(key, None)
            writer.close()

    def _evict_one(self) -> bool:
        """Close the oldest connection that has not sent its request: a slow or silent client
        gives way to a new one, so a flood of idle connections cannot lock scrapers out."""
        for key, conn in self._conns.items():
            if not conn.answering:
                self.counters.add("evicted")
                del self._conns[key]
                conn.writer.close()
                if conn.task is not None:
                    conn.task.cancel()
                return True
        return False

    async def _refuse(self, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 1\r\n"
                         b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            await asyncio.wait_for(writer.drain(), 1.0)
        except (TimeoutError, *_DISCONNECTS):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      conn: _Conn) -> None:
        peer = writer.get_extra_info("peername")
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.read_timeout_s)
        except TimeoutError:
            self.counters.add("timed_out")
            log.debug("status: %s sent no whole request in %g s", peer, self.read_timeout_s)
            return
        except asyncio.LimitOverrunError:
            self.counters.add("too_large")
            conn.answering = True
            await self._reply(writer, 431, "application/json",
                              '{"error": "request head too large"}\n', peer=peer)
            return
        except _DISCONNECTS:
            self.counters.add("disconnected")
            log.debug("status: %s went away before its request was in", peer)
            return
        conn.answering = True
        request = parse_head(head)
        if request is None:
            await self._reply(writer, 400, JSON, '{"error": "bad request"}\n', peer=peer)
            return
        form = b""
        if request.method == "POST":
            try:
                form = await self._read_body(reader, request.headers)
            except BodyError as exc:
                await self._reply(writer, exc.code, JSON, json.dumps({"error": str(exc)}) + "\n",
                                  peer=peer)
                return
            except (TimeoutError, *_DISCONNECTS):
                self.counters.add("timed_out")
                return
        code, ctype, body, extra = self._route(request, form)
        await self._reply(writer, code, ctype, body, extra, peer)

    async def _read_body(self, reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise BodyError(400, "Content-Length is not a number") from None
        if not 0 <= length <= MAX_BODY:
            raise BodyError(413, f"a body over {MAX_BODY} bytes is too large")
        return await asyncio.wait_for(reader.readexactly(length), self.read_timeout_s)

    def _signed_in(self, headers: dict[str, str]) -> bool:
        if self._expected is None:
            return True
        if hmac.compare_digest(bearer_token(headers.get("authorization", "")), self._expected):
            return True
        cookie = page.cookie_value(headers.get("cookie", "")).encode("latin-1", "replace")
        return hmac.compare_digest(cookie, self._session.encode())

    def _route(self, request: Request, form: bytes = b"") -> tuple[int, str, str, dict[str, str]]:
        path = request.target.split("?", 1)[0].rstrip("/") or "/"
        if request.method == "POST" and path == "/login":
            return self._login(form)
        if not self._signed_in(request.headers):
            if path == "/" and request.method == "GET":  # a browser: the sign-in form
                text, extra = page.login_page()
                return 401, page.HTML_TYPE, text, extra
            return (401, JSON, '{"error": "unauthorized"}\n',
                    {"WWW-Authenticate": 'Bearer realm="fer-pi"'})
        if request.method != "GET":
            return 405, JSON, '{"error": "GET only"}\n', {"Allow": "GET"}
        if path == "/status":
            return 200, JSON, json.dumps(self.status(), indent=1) + "\n", {}
        if path == "/history":
            hist = self.room.history() if self.room is not None else {}
            return 200, JSON, json.dumps(hist) + "\n", {}
        if path == "/metrics":
            return 200, PROMETHEUS_TYPE, prometheus(self.state.snapshot()), {}
        if path == "/":
            text, extra = page.room_page()
            return 200, page.HTML_TYPE, text, extra
        return 404, JSON, '{"error": "not found"}\n', {}

    def status(self) -> dict:
        snap = self.state.snapshot()
        snap["version"] = __version__
        if self.room is not None:
            snap.update(self.room.now())
        return snap

    def _login(self, form: bytes) -> tuple[int, str, str, dict[str, str]]:
        """The page's sign-in: the right token sets the session cookie and goes to the page;
        a wrong one gets the form again, saying so."""
        if self._expected is None:
            return 303, "text/plain", "", {"Location": "./"}
        try:
            fields = urllib.parse.parse_qs(form.decode("utf-8", "replace"), max_num_fields=4)
        except ValueError:  # more fields than a sign-in has: not a sign-in
            fields = {}
        given = (fields.get("token") or [""])[0].strip().encode("utf-8", "replace")
        if not hmac.compare_digest(given, self._expected):
            text, extra = page.login_page("That is not this board's token.")
            return 401, page.HTML_TYPE, text, extra
        return 303, "text/plain", "", {"Location": "./",
                                        "Set-Cookie": page.session_cookie(self._expected)}

    async def _reply(self, writer: asyncio.StreamWriter, code: int, ctype: str, body: str,
                     extra: dict[str, str] | None = None, peer=None) -> None:
        data = body.encode()
        head = [f"HTTP/1.0 {code} {REASONS.get(code, '')}", f"Server: fer-pi/{__version__}",
                f"Content-Type: {ctype}", f"Content-Length: {len(data)}",
                "Cache-Control: no-store", "Connection: close"]
        head += [f"{k}: {v}" for k, v in (extra or {}).items()]
        try:
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)
            await asyncio.wait_for(writer.drain(), self.write_timeout_s)
            self.counters.add("served")
        except TimeoutError:
            self.counters.add("timed_out")
            log.debug("status: %s did not take its reply in %g s", peer, self.write_timeout_s)
        except _DISCONNECTS as exc:
            self.counters.add("disconnected")
            log.debug("status: %s went away during its reply (%s)", peer, type(exc).__name__)
