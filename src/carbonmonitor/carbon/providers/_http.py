"""HTTP for the intensity providers: one JSON GET with a deadline, secrets scrubbed from errors,
and the in-process back-off that keeps a failing provider from being asked on every run.

Standard library only (urllib): the providers are optional and need no extra dependency.
Redirects are refused, so a header that carries a token is never replayed to another host.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from http.client import HTTPException
from typing import Any

from carbonmonitor._version import __version__
from carbonmonitor.carbon.live import ProviderError

log = logging.getLogger("carbonmonitor.carbon.providers")

MAX_BODY_BYTES = 16 * 1024 * 1024  # a month of 5-minute points is ~1 MB; more is not an answer
_CHUNK = 64 * 1024


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError with the 3xx status


_OPENER = urllib.request.build_opener(_NoRedirect())


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (of 4 characters or more) replaced by ``***``."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def get_json(url: str, *, label: str, headers: Mapping[str, str], timeout_s: float,
             secrets: Iterable[str], auth_fix: str) -> Any:
    """GET ``url`` and parse its JSON body, or raise :class:`ProviderError`.

    Each socket operation waits at most ``timeout_s``, and reading stops once ``timeout_s``
    has passed since the request began, so a call returns within about twice ``timeout_s``.
    """
    secrets = tuple(secrets)
    request = urllib.request.Request(url, headers={
        "Accept": "application/json", "User-Agent": f"carbonmonitor/{__version__}", **headers})
    started = time.monotonic()
    log.debug("GET %s", redact(url.split("?", 1)[0], secrets))
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            body = _read(response, started + timeout_s, label, timeout_s)
    except urllib.error.HTTPError as err:
        raise _status_error(err, label, secrets, auth_fix) from None
    except TimeoutError:
        raise _timeout(label, timeout_s) from None
    except urllib.error.URLError as err:
        if isinstance(err.reason, TimeoutError):
            raise _timeout(label, timeout_s) from None
        raise ProviderError(
            f"{label} could not be reached ({redact(str(err.reason), secrets)})",
            "check the network, a proxy (HTTPS_PROXY) or intensity_url") from None
    except (OSError, HTTPException) as err:
        raise ProviderError(
            f"{label} broke off the connection ({type(err).__name__})",
            "try again later") from None
    try:
        return json.loads(body)
    except ValueError:
        raise ProviderError(
            f"{label} answered with something that is not JSON ({len(body)} bytes)",
            "check that intensity_url points at the provider's API, not a proxy or "
            "login page") from None


def _read(response: Any, deadline: float, label: str, timeout_s: float) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = response.read(_CHUNK)
        if not chunk:
            return b"".join(parts)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ProviderError(f"{label} sent more than {MAX_BODY_BYTES // 2**20} MiB",
                                "ask for a shorter time range")
        if time.monotonic() > deadline:
            raise _timeout(label, timeout_s)
        parts.append(chunk)


def _timeout(label: str, timeout_s: float) -> ProviderError:
    return ProviderError(f"{label} did not answer within {timeout_s:g} s",
                         "check the network or the provider's status page; the static "
                         "tables were used")


def _status_error(err: urllib.error.HTTPError, label: str, secrets: tuple[str, ...],
                  auth_fix: str) -> ProviderError:
    try:
        detail = _error_detail(err, secrets)
    finally:
        err.close()  # the response behind the error holds a socket
    status = err.code
    if status in (401, 403):
        return ProviderError(f"{label} refused the credentials (HTTP {status}){detail}", auth_fix)
    if status == 429:
        return ProviderError(f"{label} is rate-limiting requests (HTTP 429){detail}",
                             "wait, or use a plan with a higher request quota")
    if status >= 500:
        return ProviderError(f"{label} answered HTTP {status} (server error){detail}",
                             "try again later; the provider's status page may say more")
    if 300 <= status < 400:
        return ProviderError(f"{label} answered with a redirect (HTTP {status})",
                             "set intensity_url to the API's final address")
    # a request the provider refuses as such (unknown zone, bad region) will not succeed later
    return ProviderError(f"{label} answered HTTP {status}{detail}",
                         "check the zone or region name and that your plan includes it",
                         transient=status not in (400, 404, 422))


def _error_detail(err: urllib.error.HTTPError, secrets: tuple[str, ...]) -> str:
    try:
        raw = err.read(2048)
    except (OSError, HTTPException):
        return ""
    text = raw.decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        for key in ("message", "error", "detail"):
            if isinstance(parsed.get(key), str):
                text = parsed[key]
                break
    text = " ".join(redact(text, secrets).split())[:200]
    return f": {text}" if text else ""


class Backoff:
    """After a failure, a provider is not asked again for a while (in this process).

    Rule: the first failure pauses the provider for ``initial_s`` (5 min); each further
    failure in a row doubles the pause, up to ``max_s`` (1 h); a success ends it. While paused,
    ``bins`` raises at once without sending anything. Keys are the provider's name and base
    URL, so one shared instance (:data:`DEFAULT_BACKOFF`) serves every run in a process;
    tests pass their own. Time comes from the provider's clock (``monotonic``).
    """

    def __init__(self, *, initial_s: float = 300.0, max_s: float = 3600.0) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self._lock = threading.Lock()
        self._state: dict[tuple[str, str], tuple[int, float, str]] = {}  # failures, until, why

    def remaining_s(self, key: tuple[str, str], now: float) -> tuple[float, str]:
        """Seconds until the provider may be asked again (0: now), and the last failure."""
        with self._lock:
            _, until, reason = self._state.get(key, (0, 0.0, ""))
        return max(until - now, 0.0), reason

    def failed(self, key: tuple[str, str], now: float, reason: str) -> float:
        """Record a failure; returns the pause it starts."""
        with self._lock:
            failures = self._state.get(key, (0, 0.0, ""))[0] + 1
            pause = min(self.initial_s * 2.0 ** (failures - 1), self.max_s)
            self._state[key] = (failures, now + pause, reason)
        return pause

    def succeeded(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._state.pop(key, None)


DEFAULT_BACKOFF = Backoff()
"""The process-wide back-off used when a provider is given none."""
