"""HTTP for the intensity providers: one JSON GET through :mod:`carbonmonitor.carbon.http`
(deadline, body cap, redirects refused, secrets kept out of errors), its failures told in the
provider's words, and the in-process back-off that keeps a failing provider from being asked
on every run.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from carbonmonitor._version import __version__
from carbonmonitor.carbon.http import HttpError, Kind, redact, request
from carbonmonitor.carbon.live import ProviderError

log = logging.getLogger("carbonmonitor.carbon.providers")

MAX_BODY_BYTES = 16 * 1024 * 1024  # a month of 5-minute points is ~1 MB; more is not an answer


def get_json(url: str, *, label: str, headers: Mapping[str, str], timeout_s: float,
             secrets: Iterable[str], auth_fix: str) -> Any:
    """GET ``url`` and parse its JSON body, or raise :class:`ProviderError`.

    Each socket operation waits at most ``timeout_s``, and reading stops once ``timeout_s``
    has passed since the request began, so a call returns within about twice ``timeout_s``.
    """
    secrets = tuple(secrets)
    log.debug("GET %s", redact(url.split("?", 1)[0], secrets))
    try:
        body = request("GET", url, headers={
            "Accept": "application/json", "User-Agent": f"carbonmonitor/{__version__}",
            **headers}, timeout_s=timeout_s, max_bytes=MAX_BODY_BYTES, secrets=secrets).body
    except HttpError as err:
        raise _provider_error(err, label, timeout_s, auth_fix) from None
    try:
        return json.loads(body)
    except ValueError:
        raise ProviderError(
            f"{label} answered with something that is not JSON ({len(body)} bytes)",
            "check that intensity_url points at the provider's API, not a proxy or "
            "login page") from None


# What each failure but an HTTP status means to a provider's user: (reason, fix) templates.
_FAILURES: dict[Kind, tuple[str, str]] = {
    "timeout": ("{label} did not answer within {timeout_s:g} s",
                "check the network or the provider's status page; the static tables were used"),
    "unreachable": ("{label} could not be reached ({detail})",
                    "check the network, a proxy (HTTPS_PROXY) or intensity_url"),
    "broken": ("{label} broke off the connection ({detail})", "try again later"),
    "too-large": (f"{{label}} sent more than {MAX_BODY_BYTES // 2**20} MiB",
                  "ask for a shorter time range"),
    "redirect": ("{label} answered with a redirect (HTTP {status})",
                 "set intensity_url to the API's final address"),
}


def _provider_error(err: HttpError, label: str, timeout_s: float,
                    auth_fix: str) -> ProviderError:
    if err.kind in _FAILURES:
        reason, fix = _FAILURES[err.kind]
        return ProviderError(reason.format(label=label, timeout_s=timeout_s, detail=err.detail,
                                           status=err.status), fix)
    status = err.status or 0
    detail = f": {err.excerpt}" if err.excerpt else ""
    if status in (401, 403):
        return ProviderError(f"{label} refused the credentials (HTTP {status}){detail}", auth_fix)
    if status == 429:
        return ProviderError(f"{label} is rate-limiting requests (HTTP 429){detail}",
                             "wait, or use a plan with a higher request quota")
    if status >= 500:
        return ProviderError(f"{label} answered HTTP {status} (server error){detail}",
                             "try again later; the provider's status page may say more")
    # a request the provider refuses as such (unknown zone, bad region) will not succeed later
    return ProviderError(f"{label} answered HTTP {status}{detail}",
                         "check the zone or region name and that your plan includes it",
                         transient=status not in (400, 404, 422))


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
