"""A small HTTP client for OpenAI-compatible servers: JSON requests and SSE streams.

Standard library only (http.client), so that a cancel can shut the socket of a stream from
another thread and every failure maps to one clear `RemoteError` sentence:

- connect: DNS failure, nothing listening, connect timeout;
- status: 401/403 (names the variable that holds the key), 404, 429 (retried with backoff,
  each wait reported through `notify`), 5xx, other 4xx with the server's own message;
- body: malformed JSON, a stream cut off before the server said it was done, a read timeout
  (no byte for `read_timeout` seconds, e.g. a very slow first token).

The API key is sent as `Authorization: Bearer ...` and removed from every message (`redact`).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

from lab.errors import LabError
from lab.remotes import RemoteConfig, announce, redact


class RemoteError(LabError):
    """A remote server could not be used; the message says why and what to do."""


class StatusError(RemoteError):
    def __init__(self, status: int, message: str, hint: str | None = None) -> None:
        self.status = status
        super().__init__(message, hint)


class Http:
    """JSON over HTTP(S) to one server. Keeps one connection alive for plain requests;
    each stream gets its own connection, closed when the stream ends or is cancelled."""

    def __init__(self, cfg: RemoteConfig, notify: Callable[[str], None] | None = None) -> None:
        parts = urlsplit(cfg.url)
        self.cfg = cfg
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.where = f"{self.host}:{self.port}"
        self.base = parts.path.rstrip("/")  # "/v1"
        self.root = self.base[:-3] if self.base.endswith("/v1") else self.base  # where /tokenize lives
        self.key = cfg.api_key()
        self.notify = notify or announce
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    # ---- messages ------------------------------------------------------------------
    def clean(self, text: str) -> str:
        from lab.remotes import known_keys

        return redact(text, self.key, *known_keys())

    def error(self, message: str, hint: str | None = None, status: int = 0) -> RemoteError:
        hint = self.clean(hint) if hint else hint
        if status:
            return StatusError(status, self.clean(message), hint)
        return RemoteError(self.clean(message), hint)

    def _headers(self, stream: bool) -> dict[str, str]:
        h = {"Content-Type": "application/json", "Accept": "text/event-stream" if stream else "application/json",
             "User-Agent": "deepdive-lab"}
        if self.key:
            h["Authorization"] = f"Bearer {self.key}"
        return h

    # ---- connections -----------------------------------------------------------------
    def _connect(self) -> http.client.HTTPConnection:
        cfg = self.cfg
        if self.https:
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=cfg.connect_timeout,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=cfg.connect_timeout)
        try:
            conn.connect()
        except socket.gaierror as exc:
            raise self.error(f"cannot resolve {self.host} (DNS failure: {exc.strerror or exc}).",
                             "Check the URL, or your internet connection.") from exc
        except ConnectionRefusedError as exc:
            raise self.error(f"nothing answers at {self.where}: the server is down or not started.",
                             "Start the server, or check the URL and port.") from exc
        except (socket.timeout, TimeoutError) as exc:
            raise self.error(f"connecting to {self.where} timed out after {cfg.connect_timeout:g} s.",
                             "Check the URL and that the server is reachable from here.") from exc
        except ssl.SSLError as exc:
            raise self.error(f"TLS with {self.where} failed: {exc.reason or exc}.") from exc
        except OSError as exc:
            raise self.error(f"cannot connect to {self.where}: {exc.strerror or exc}.") from exc
        conn.sock.settimeout(cfg.read_timeout)
        return conn

    def _send(self, conn, method: str, path: str, body: dict | None, stream: bool) -> http.client.HTTPResponse:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers=self._headers(stream))
        return conn.getresponse()

    def _read_failed(self, exc: BaseException) -> RemoteError:
        if isinstance(exc, (socket.timeout, TimeoutError)):
            return self.error(f"{self.where} sent nothing for {self.cfg.read_timeout:g} s (read timeout).",
                              "The model may still be loading or too slow; try again, or raise read_timeout "
                              "in its [remotes.NAME] table.")
        return self.error(f"the connection to {self.where} broke: {exc.__class__.__name__}: {exc}.",
                          "Check that the server is still running, then try again.")

    def _retry_wait(self, resp: http.client.HTTPResponse, attempt: int) -> float:
        wait = self.cfg.backoff * 2 ** (attempt - 1)
        try:
            wait = max(wait, min(float(resp.getheader("Retry-After") or 0), 60.0))
        except ValueError:
            pass
        return wait

    def _check(self, status: int, data: bytes, what: str) -> None:
        if status < 400:
            return
        detail = _detail(data)
        cfg = self.cfg
        if status in (401, 403):
            todo = (f"set {cfg.key_env} to a valid API key" if cfg.key_env else
                    "this server wants an API key: add key_env = \"VARIABLE\" to its [remotes.NAME] table "
                    "in the config file and set that variable")
            raise self.error(f"{self.where} refused the request ({status}): {todo}. The server said: {detail}",
                             None, status)
        if status == 404:
            raise self.error(f"{self.where} has no {what} (404): {detail}",
                             "Check the model name and the URL (it usually ends in /v1); "
                             "`deepdive-lab doctor` lists what each remote serves.", status)
        if status == 429:
            raise self.error(f"{self.where} rate-limited the lab (429) {cfg.retries} times: {detail}",
                             "Wait a minute and try again, or use a plan with a higher rate limit.", status)
        if status >= 500:
            raise self.error(f"{self.where} failed ({status}): {detail}",
                             "The server's own log says why; try again, or restart it.", status)
        raise self.error(f"{self.where} rejected the request ({status}): {detail}", None, status)

    # ---- requests ----------------------------------------------------------------------
    def request(self, method: str, path: str, body: dict | None = None, what: str = "such endpoint") -> dict:
        """One JSON request (429 retried with backoff). Returns the parsed JSON object."""
        for attempt in range(1, max(1, self.cfg.retries) + 1):
            with self._lock:
                conn, reused = self._conn, self._conn is not None
                self._conn = None
                try:
                    if conn is None:
                        conn = self._connect()
                    try:
                        resp = self._send(conn, method, path, body, False)
                    except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                        if not reused:
                            raise
                        conn.close()  # a kept-alive connection the server had closed: one fresh try
                        conn = self._connect()
                        resp = self._send(conn, method, path, body, False)
                    data = resp.read()
                except RemoteError:
                    raise
                except (OSError, http.client.HTTPException) as exc:
                    if conn is not None:
                        conn.close()
                    raise self._read_failed(exc) from exc
                if resp.will_close:
                    conn.close()
                else:
                    self._conn = conn
            if resp.status == 429 and attempt < self.cfg.retries:
                wait = self._retry_wait(resp, attempt)
                self.notify(f"{self.where} is rate limiting (429): retrying in {wait:.1f} s "
                            f"(try {attempt + 1} of {self.cfg.retries})")
                time.sleep(wait)
                continue
            self._check(resp.status, data, what)
            try:
                out = json.loads(data)
            except ValueError:
                raise self.error(f"{self.where} answered with malformed JSON: {_snippet(data)}",
                                 "Is the URL an OpenAI-compatible API (it usually ends in /v1)?") from None
            if not isinstance(out, dict):
                raise self.error(f"{self.where} answered with JSON that is not an object: {_snippet(data)}")
            return out
        raise AssertionError("unreachable")

    def stream(self, path: str, body: dict, cancel: threading.Event | None = None) -> Iterator[dict]:
        """POST with stream=true and yield each SSE `data:` object until `[DONE]`.

        Setting `cancel` shuts the socket at once (even while waiting for a slow first token)
        and the iterator ends quietly; closing the iterator closes the connection too."""
        cancel = cancel or threading.Event()
        conn = resp = None
        for attempt in range(1, max(1, self.cfg.retries) + 1):
            conn = self._connect()
            watcher = _Watcher(conn, cancel)
            try:
                resp = self._send(conn, "POST", path, body, True)
            except (OSError, http.client.HTTPException) as exc:
                watcher.stop()
                conn.close()
                if cancel.is_set():
                    return
                raise self._read_failed(exc) from exc
            if resp.status == 429 and attempt < self.cfg.retries:
                wait = self._retry_wait(resp, attempt)
                watcher.stop()
                conn.close()
                self.notify(f"{self.where} is rate limiting (429): retrying in {wait:.1f} s "
                            f"(try {attempt + 1} of {self.cfg.retries})")
                if cancel.wait(wait):
                    return
                continue
            break
        try:
            if resp.status >= 400:
                self._check(resp.status, resp.read(), "such model or endpoint")
            done = False
            while not done and not cancel.is_set():
                try:
                    line = resp.readline()
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    if cancel.is_set():
                        return
                    raise self._read_failed(exc) from exc
                if not line or not line.endswith(b"\n"):
                    break  # the end of the body, or a last line cut off mid-event
                line = line.strip()
                if not line.startswith(b"data:"):
                    continue  # blank separators, ": ping" comments, event names
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    done = True
                    break
                try:
                    obj = json.loads(payload)
                except ValueError:
                    raise self.error(f"{self.where} sent a malformed stream event: {_snippet(payload)}") from None
                if isinstance(obj, dict) and "error" in obj:
                    raise self.error(f"{self.where} reported an error mid-stream: {_detail(payload)}")
                yield obj
            if not done and not cancel.is_set():
                raise self.error(f"the stream from {self.where} was cut off before the server said it was done.",
                                 "The text so far is kept; check the server, then try again.")
        finally:
            watcher.stop()
            conn.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class _Watcher:
    """Shuts a connection's socket as soon as `cancel` is set (from its own thread)."""

    def __init__(self, conn: http.client.HTTPConnection, cancel: threading.Event) -> None:
        self._done = threading.Event()
        self._sock, self._cancel = conn.sock, cancel  # the connection drops its reference once a reply is read
        threading.Thread(target=self._run, name="remote-cancel", daemon=True).start()

    def _run(self) -> None:
        while not self._done.is_set():
            if self._cancel.wait(0.05):
                if not self._done.is_set():
                    try:
                        self._sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return

    def stop(self) -> None:
        self._done.set()


def _snippet(data: bytes, n: int = 80) -> str:
    text = data.decode("utf-8", errors="replace").strip().replace("\n", " ")
    return repr(text[:n] + ("…" if len(text) > n else "")) if text else "(an empty body)"


def _detail(data: bytes) -> str:
    """The server's own error message (OpenAI's {"error": {"message"}}, FastAPI's {"detail"}), short."""
    try:
        obj = json.loads(data)
    except ValueError:
        return _snippet(data, 200)
    if isinstance(obj, dict):
        err = obj.get("error", obj.get("detail", obj.get("message")))
        if isinstance(err, dict):
            err = err.get("message", err)
        if err is not None:
            text = err if isinstance(err, str) else json.dumps(err)
            return text[:200] + ("…" if len(text) > 200 else "")
    return _snippet(data, 200)
