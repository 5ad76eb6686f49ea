"""One HTTP request over the standard library, for the carbon package's few network calls.

Cloud metadata and opt-in IP geolocation (:mod:`~carbonmonitor.carbon.detect`) and the live
intensity providers (:mod:`~carbonmonitor.carbon.providers`) all send through :func:`request`,
so these rules hold for each of them:

- A redirect is an error, never followed: a header carrying a token (the IMDSv2 token, a
  provider's API key) is never replayed to another host.
- The body is capped at ``max_bytes``, and reading stops once ``timeout_s`` has passed since
  the request began; each socket wait is bounded by ``timeout_s`` too, so a call returns within
  about twice ``timeout_s``.
- The response is closed on every path, errors included.
- Error text holds no secret: the values of credential headers (``Authorization``, any name
  with ``token``, ``key``, ``auth``...) and the given ``secrets`` become ``***``.

Every failure is one :class:`HttpError` whose ``kind`` says what failed. ``urllib.request``
(~40 ms to import) is imported on the first request, so importing this module costs nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import http.client
    import urllib.error
    import urllib.request

__all__ = ["HttpError", "Kind", "Response", "redact", "request"]

Kind = Literal["timeout", "unreachable", "status", "redirect", "too-large", "broken"]

ERROR_BODY_BYTES = 2048  # of an error answer: enough for the server's message
EXCERPT_CHARS = 200
_CHUNK = 64 * 1024
_SECRET_HEADER_WORDS = ("auth", "token", "key", "secret", "password", "cookie")
_FIXES: dict[Kind, str] = {
    "timeout": "check that the server is reachable from this machine, or allow a longer timeout",
    "unreachable": "check the address and the network; a proxy is taken from HTTPS_PROXY, "
                   "HTTP_PROXY and NO_PROXY",
    "redirect": "use the address it redirects to directly (redirects are not followed, so "
                "credentials never reach another host)",
    "too-large": "ask for less (a shorter time range), or check that the address is the API's",
    "broken": "try again later",
}


@dataclass(frozen=True)
class Response:
    """A 2xx answer: status, headers (lower-case names) and the whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class HttpError(OSError):
    """A request failed; ``str()`` says what was asked, what failed and what to do.

    An ``OSError``, so code that expects network errors as ``OSError`` catches it too.

    Attributes:
        kind: what failed: ``"timeout"`` (no answer within ``timeout_s``), ``"unreachable"``
            (no connection: refused, DNS, TLS), ``"status"`` (a 4xx/5xx answer),
            ``"redirect"`` (a 3xx, not followed), ``"too-large"`` (body over ``max_bytes``),
            ``"broken"`` (the connection broke off or the answer was cut short).
        detail: a short phrase without address or secret, e.g. ``"HTTP 500"``.
        status: the HTTP status for ``"status"`` and ``"redirect"``, else None.
        excerpt: for ``"status"``, the server's message (a JSON ``message``/``error``/``detail``
            member, or the text), at most 200 characters, secrets replaced; else ``""``.
    """

    def __init__(self, kind: Kind, detail: str, *, target: str, status: int | None = None,
                 excerpt: str = "") -> None:
        self.kind = kind
        self.detail = detail
        self.status = status
        self.excerpt = excerpt
        said = f": {excerpt}" if excerpt else ""
        super().__init__(f"{target}: {detail}{said}. Fix: {_fix(kind, status)}")


def _fix(kind: Kind, status: int | None) -> str:
    if kind != "status" or status is None:
        return _FIXES.get(kind, "try again later")
    if status in (401, 403):
        return "check the credentials"
    if status == 429:
        return "ask less often: the server is rate-limiting requests"
    if status >= 500:
        return "try again later: the server had an error"
    return "check the address and the request's parameters"


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (of 4 characters or more) replaced by ``***``."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def request(method: str, url: str, *, headers: Mapping[str, str] | None = None,
            data: bytes | None = None, timeout_s: float, max_bytes: int,
            env_proxies: bool = True, secrets: Iterable[str] = ()) -> Response:
    """Send one request and return its 2xx answer, or raise :class:`HttpError`.

    Args:
        method: ``"GET"``, ``"PUT"``...
        url: ``http://`` or ``https://`` address; a malformed one raises ``ValueError``.
        headers: request headers; credential headers' values never appear in errors.
        data: request body.
        timeout_s: bound on each socket wait and on reading the whole body.
        max_bytes: the largest body accepted.
        env_proxies: honour ``HTTP(S)_PROXY``/``NO_PROXY``; False connects directly (instance
            metadata must be reached so).
        secrets: more values (a password) to keep out of error text.

    Example:
        >>> try:  # nothing listens on port 9 here
        ...     request("GET", "http://127.0.0.1:9/", timeout_s=0.5, max_bytes=1024)
        ... except HttpError as err:
        ...     print(err.kind, err.detail)
        unreachable ConnectionRefusedError: [Errno 111] Connection refused
    """
    import urllib.error
    import urllib.request
    from http.client import HTTPException

    headers = dict(headers or {})
    hidden = (*secrets, *_header_secrets(headers))
    target = f"{method} {_without_query(url)}"
    sent = urllib.request.Request(url, data=data, headers=headers, method=method)
    deadline = time.monotonic() + timeout_s
    try:
        with _opener(env_proxies).open(sent, timeout=timeout_s) as response:
            body = _read(response, max_bytes, deadline, timeout_s, target)
            return Response(response.status,
                            {k.lower(): v for k, v in response.headers.items()}, body)
    except HttpError:
        raise
    except urllib.error.HTTPError as err:
        raise _status_error(err, target, hidden) from err
    except urllib.error.URLError as err:  # no connection; it wraps the socket's error
        reason = err.reason
        if isinstance(reason, TimeoutError):
            raise _late(timeout_s, target) from err
        cause = f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) \
            else str(reason)
        raise HttpError("unreachable", redact(cause, hidden), target=target) from err
    except TimeoutError as err:
        raise _late(timeout_s, target) from err
    except (OSError, HTTPException) as err:  # RemoteDisconnected, a reset, a garbled answer
        raise HttpError("broken", redact(f"{type(err).__name__}: {err}", hidden),
                        target=target) from err


def _header_secrets(headers: Mapping[str, str]) -> Iterator[str]:
    for name, value in headers.items():
        if any(word in name.lower() for word in _SECRET_HEADER_WORDS):
            yield value
            yield value.partition(" ")[2]  # the credential of "Bearer <token>", "Basic <b64>"


def _without_query(url: str) -> str:
    """The address to show: no user info, query or fragment (they may hold a key)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


@cache
def _no_redirect() -> type[urllib.request.HTTPRedirectHandler]:
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None  # urllib then raises HTTPError with the 3xx status

    return NoRedirect


def _opener(env_proxies: bool) -> urllib.request.OpenerDirector:
    import urllib.request

    # Built per request (~0.3 ms): ProxyHandler() reads the proxy variables when built, so a
    # cached opener would keep a proxy the environment no longer names.
    proxies = urllib.request.ProxyHandler(None if env_proxies else {})
    return urllib.request.build_opener(proxies, _no_redirect()())


def _read(response: http.client.HTTPResponse, max_bytes: int, deadline: float,
          timeout_s: float, target: str) -> bytes:
    parts: list[bytes] = []
    size = 0
    # read1 returns after one socket read, so a server trickling bytes meets the deadline
    while chunk := response.read1(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise HttpError("too-large", f"answer longer than {max_bytes} bytes", target=target)
        if time.monotonic() > deadline:
            raise _late(timeout_s, target)
        parts.append(chunk)
    if response.length:  # http.client ends a body cut short without IncompleteRead
        raise HttpError("broken", f"answer cut short ({response.length} bytes missing)",
                        target=target)
    return b"".join(parts)


def _late(timeout_s: float, target: str) -> HttpError:
    return HttpError("timeout", f"no answer in time ({timeout_s:g} s)", target=target)


def _status_error(err: urllib.error.HTTPError, target: str,
                  secrets: tuple[str, ...]) -> HttpError:
    from http.client import HTTPException

    try:
        if 300 <= err.code < 400:
            return HttpError("redirect", f"HTTP {err.code} redirect, not followed",
                             target=target, status=err.code)
        try:
            raw = err.read(ERROR_BODY_BYTES)
        except (OSError, HTTPException):
            raw = b""
        return HttpError("status", f"HTTP {err.code}", target=target, status=err.code,
                         excerpt=_excerpt(raw, secrets))
    finally:
        err.close()  # the response behind the error holds the socket


def _excerpt(raw: bytes, secrets: tuple[str, ...]) -> str:
    """The server's message in an error answer, on one line, secrets replaced."""
    import json

    text = raw.decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        text = next((parsed[key] for key in ("message", "error", "detail")
                     if isinstance(parsed.get(key), str)), text)
    return " ".join(redact(text, secrets).split())[:EXCERPT_CHARS]
