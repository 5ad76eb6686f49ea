"""The carbon package's one HTTP request, against loopback servers that answer byte by byte.

Each server handles its connections in a thread and records what it received and whether the
client closed the connection; every wait is bounded, no test sleeps.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from carbonmonitor.carbon.http import HttpError, Response, redact, request

Script = Callable[[socket.socket, bytes], None]
WAIT_S = 5.0  # the most any test waits for a server to see something


@pytest.fixture(autouse=True)
def _no_proxy_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY",
                 "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)


class Server:
    """Serves each connection on 127.0.0.1 with ``script(connection, request)``, then reads
    until the client closes the connection (``closed`` is set) or ``WAIT_S`` passes."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[bytes] = []
        self.closed = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        # close() wakes the accepting thread through this pair and closes the listening socket
        # only once the thread is gone: closed under a thread about to accept, its descriptor
        # could be reused by the next test's server, whose connections this one would take.
        self._wake, self._waker = socket.socketpair()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            ready, _, _ = select.select([self.sock, self._wake], [], [])
            if self._wake in ready:
                return
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(WAIT_S)
                try:
                    head = _read_request(conn)
                    self.requests.append(head)
                    self.script(conn, head)
                    while conn.recv(65536):
                        pass
                    self.closed.set()
                except OSError:  # the client went away mid-answer, or never closed
                    pass

    def close(self) -> None:
        self._waker.send(b"x")
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive()
        for sock in (self.sock, self._wake, self._waker):
            sock.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            while len(body) < int(value):
                body += conn.recv(65536)
    return data if not body else head + b"\r\n\r\n" + body


def answer(status: int, body: bytes = b"", *, length: int | None = None,
           headers: dict[str, str] | None = None) -> Script:
    """A script sending ``status``, ``headers`` and ``body``, announcing ``length`` bytes
    (default: the body's length), and then nothing."""
    def script(conn: socket.socket, head: bytes) -> None:
        size = len(body) if length is None else length
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {size}",
                 *(f"{k}: {v}" for k, v in (headers or {}).items())]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return script


@pytest.fixture
def serve() -> Iterator[Callable[[Script], Server]]:
    servers: list[Server] = []

    def start(script: Script) -> Server:
        servers.append(Server(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_a_2xx_answer_with_method_headers_and_body(serve: Callable[[Script], Server]) -> None:
    server = serve(answer(201, b"made", headers={"X-Thing": "1"}))
    got = request("PUT", server.url + "/a?b=c", headers={"Metadata": "true"}, data=b"xyz",
                  timeout_s=WAIT_S, max_bytes=4)
    assert got == Response(201, got.headers, b"made") and got.headers["x-thing"] == "1"
    [sent] = server.requests
    assert sent.startswith(b"PUT /a?b=c HTTP/1.1\r\n") and sent.endswith(b"\r\n\r\nxyz")
    assert b"\r\nMetadata: true\r\n" in sent
    assert server.closed.wait(WAIT_S)


def test_a_redirect_is_an_error_and_is_not_followed(serve: Callable[[Script], Server]) -> None:
    elsewhere = serve(answer(200, b"stolen"))
    server = serve(answer(302, headers={"Location": elsewhere.url + "/steal"}))
    with pytest.raises(HttpError) as caught:
        request("GET", server.url + "/", headers={"Authorization": "Bearer tok-1234"},
                timeout_s=WAIT_S, max_bytes=100)
    assert (caught.value.kind, caught.value.status) == ("redirect", 302)
    assert "HTTP 302 redirect, not followed" in str(caught.value) and "Fix: use" in str(
        caught.value)
    assert server.closed.wait(WAIT_S) and elsewhere.requests == []


def test_a_server_that_never_answers_is_given_up_within_the_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepts (backlog), says nothing
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        started = time.monotonic()
        with pytest.raises(HttpError) as caught:
            request("GET", url, timeout_s=0.2, max_bytes=100)
        elapsed = time.monotonic() - started
    assert elapsed < 2 * 0.2 + 1.0
    assert caught.value.kind == "timeout" and caught.value.status is None
    assert f"GET {url}: no answer in time (0.2 s). Fix: " in str(caught.value)


def test_a_body_that_never_comes_times_out_and_the_connection_is_closed(
        serve: Callable[[Script], Server]) -> None:
    server = serve(answer(200, b"", length=10))
    started = time.monotonic()
    with pytest.raises(HttpError) as caught:
        request("GET", server.url, timeout_s=0.2, max_bytes=100)
    assert time.monotonic() - started < 2 * 0.2 + 1.0
    assert caught.value.kind == "timeout"
    assert server.closed.wait(WAIT_S)


def test_an_oversized_body_is_refused_and_the_connection_closed(
        serve: Callable[[Script], Server]) -> None:
    exact = serve(answer(200, b"x" * 1000))
    assert request("GET", exact.url, timeout_s=WAIT_S, max_bytes=1000).body == b"x" * 1000
    server = serve(answer(200, b"x" * 5000, length=10**6))  # more announced, more to come
    with pytest.raises(HttpError) as caught:
        request("GET", server.url, timeout_s=WAIT_S, max_bytes=1000)
    assert caught.value.kind == "too-large"
    assert "answer longer than 1000 bytes" in str(caught.value)
    assert server.closed.wait(WAIT_S)  # while the error (and its cause) is still held


def test_a_500_carries_the_servers_message_and_the_connection_is_closed(
        serve: Callable[[Script], Server]) -> None:
    body = json.dumps({"message": "zone  XX\nis unknown", "code": 7}).encode()
    server = serve(answer(500, body + b" " * 4000, length=10**6))  # the rest never comes
    with pytest.raises(HttpError) as caught:
        request("GET", server.url + "/v3/x?zone=XX", timeout_s=WAIT_S, max_bytes=100)
    err = caught.value
    assert (err.kind, err.status, err.detail) == ("status", 500, "HTTP 500")
    assert err.excerpt == "zone XX is unknown"  # the JSON message member, on one line
    assert str(err) == (f"GET {server.url}/v3/x: HTTP 500: zone XX is unknown. "
                        "Fix: try again later: the server had an error")
    assert isinstance(err, OSError)
    assert server.closed.wait(WAIT_S)


def test_secrets_never_reach_the_error_text(serve: Callable[[Script], Server]) -> None:
    def echo(conn: socket.socket, head: bytes) -> None:  # the request, headers and all
        answer(401, b"you sent:\n" + head)(conn, head)

    server = serve(echo)
    secrets = ("Bearer bearer-c0ffee42", "key-5f2a9c71", "hunter2-password", "em-token-8d31")
    with pytest.raises(HttpError) as caught:
        request("GET", f"{server.url}/login?password=hunter2-password",
                headers={"Authorization": "Bearer bearer-c0ffee42", "X-Api-Key": "key-5f2a9c71",
                         "auth-token": "em-token-8d31", "Metadata-Flavor": "Google"},
                timeout_s=WAIT_S, max_bytes=100, secrets=["hunter2-password"])
    err = caught.value
    assert b"bearer-c0ffee42" in server.requests[0]  # sent, and echoed back
    assert err.kind == "status" and err.excerpt.startswith("you sent: GET /login?password=*** ")
    for text in (str(err), repr(err), err.detail, err.excerpt):
        for secret in secrets:
            assert secret.split()[-1] not in text
    assert "Fix: check the credentials" in str(err)


def test_a_refused_connection_and_a_broken_answer(serve: Callable[[Script], Server]) -> None:
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(HttpError) as refused:
        request("GET", f"http://127.0.0.1:{port}/", timeout_s=WAIT_S, max_bytes=100)
    assert refused.value.kind == "unreachable"
    assert "ConnectionRefusedError" in str(refused.value) and "Fix: check the address" in str(
        refused.value)

    def hang_up(conn: socket.socket, head: bytes) -> None:
        conn.shutdown(socket.SHUT_WR)

    def cut_short(conn: socket.socket, head: bytes) -> None:
        answer(200, b"0123456789", length=100)(conn, head)
        hang_up(conn, head)

    for script, detail in [(hang_up, "RemoteDisconnected"), (cut_short, "90 bytes missing")]:
        server = serve(script)
        with pytest.raises(HttpError) as broken:
            request("GET", server.url, timeout_s=WAIT_S, max_bytes=1000)
        assert broken.value.kind == "broken" and detail in broken.value.detail


def test_environment_proxies_are_used_only_when_asked(
        serve: Callable[[Script], Server], monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = serve(answer(200, b"via proxy"))
    target = serve(answer(200, b"direct"))
    monkeypatch.setenv("http_proxy", proxy.url)
    assert request("GET", target.url + "/x", timeout_s=WAIT_S, max_bytes=100,
                   env_proxies=False).body == b"direct"
    assert proxy.requests == []
    assert request("GET", target.url + "/x", timeout_s=WAIT_S, max_bytes=100).body == b"via proxy"
    assert proxy.requests[0].startswith(f"GET {target.url}/x HTTP/1.1".encode())


def test_redact_replaces_longer_secrets_first() -> None:
    assert redact("a abcd abcdef b", ["abcd", "abcdef", "ab", ""]) == "a *** *** b"
