"""Time-resolved intensity: providers against loopback servers that speak the documented
formats, the disk cache, the back-off, and the hourly account of a run.

Every server here listens on 127.0.0.1 and records what it receives; no test sends anything
elsewhere. Expected grams are worked out by hand in the comments beside them.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from carbonmonitor.carbon.live import (
    IntensityBin,
    ProviderError,
    hourly_emissions,
    live_emissions,
    points_from_series,
)
from carbonmonitor.carbon.providers import (
    Backoff,
    DiskCache,
    ElectricityMaps,
    UKCarbonIntensity,
    WattTime,
    make_provider,
)
from carbonmonitor.clock import ManualClock
from carbonmonitor.errors import ConfigError

UTC = timezone.utc
EM_TOKEN = "em-token-5f2a9c71"
WT_USER, WT_PASSWORD, WT_TOKEN = "alice", "wt-password-8d31", "wt-bearer-c0ffee42"
STATIC = 400.0  # the static table's factor, g/kWh, used where no bin covers the energy


def at(hour: int, minute: int = 0, *, day: int = 1) -> float:
    return datetime(2025, 6, day, hour, minute, tzinfo=UTC).timestamp()


def dt(hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 6, 1, hour, minute, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _direct_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib must reach the loopback servers directly, whatever proxy the shell has set."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")


# -- loopback servers ------------------------------------------------------------------------


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


Reply = tuple[int, Any]


class FakeApi:
    """A loopback HTTP server answering GETs with ``respond(seen) -> (status, body)``."""

    def __init__(self, respond: Callable[[Seen], Reply]) -> None:
        self.respond = respond
        self.seen: list[Seen] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                seen = Seen(parts.path, dict(parse_qsl(parts.query)),
                            {k.lower(): v for k, v in self.headers.items()})
                api.seen.append(seen)
                status, body = api.respond(seen)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", body.decode())
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[Seen], Reply]], FakeApi]]:
    started: list[FakeApi] = []

    def start(respond: Callable[[Seen], Reply]) -> FakeApi:
        started.append(FakeApi(respond))
        return started[-1]

    yield start
    for api in started:
        api.close()


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A server that accepts connections (in its backlog) and never answers."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def parse_z(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def electricity_maps(values: dict[int, float], *, estimated: tuple[int, ...] = ()
                     ) -> Callable[[Seen], Reply]:
    """``/v3/carbon-intensity/past-range`` as documented: hours of 2025-06-01 in
    ``[start, end)``, ``datetime`` the start of the hour; 401 without the right auth-token."""

    def respond(seen: Seen) -> Reply:
        if seen.path != "/v3/carbon-intensity/past-range":
            return 404, {"error": f"unknown path {seen.path}"}
        given = seen.headers.get("auth-token")
        if given != EM_TOKEN:
            return 401, {"message": f"Invalid auth-token {given}"}  # echoes it, as some do
        start, end = parse_z(seen.query["start"]), parse_z(seen.query["end"])
        factor_type = seen.query.get("emissionFactorType", "lifecycle")
        data = [{"zone": seen.query["zone"], "carbonIntensity": value,
                 "datetime": f"2025-06-01T{hour:02d}:00:00.000Z",
                 "updatedAt": "2025-06-02T00:00:00.000Z", "createdAt": "2025-06-01T00:00:00.000Z",
                 "emissionFactorType": factor_type, "isEstimated": hour in estimated,
                 "estimationMethod": "TIME_SLICER_AVERAGE" if hour in estimated else None}
                for hour, value in sorted(values.items()) if start <= dt(hour) < end]
        return 200, {"zone": seen.query["zone"], "data": data, "temporalGranularity": "hourly"}

    return respond


# -- the run: 10:40 to 13:20 UTC, three hour boundaries, uneven power ----------------------

# Samples (wall clock); power is 300 W until 11:30, 120 W until 12:45, then 600 W. Three
# sample intervals straddle an hour (10:50-11:10, 11:50-12:10, 12:55-13:05), none a change
# of power, so spreading each interval's energy uniformly is exact here.
SAMPLES = [(10, 40), (10, 50), (11, 10), (11, 30), (11, 50), (12, 10), (12, 30), (12, 45),
           (12, 55), (13, 5), (13, 20)]


def power_w(t: float) -> float:
    return 300.0 if t < at(11, 30) else 120.0 if t < at(12, 45) else 600.0


def sample_run(clock: ManualClock) -> list[tuple[float, float]]:
    """What a tracker stores: (wall time, cumulative J) at each sample, under a fake clock."""
    assert clock.wall() == at(10, 40)
    energy_j = 0.0
    points = [(clock.wall(), energy_j)]
    for hour, minute in SAMPLES[1:]:
        step_s = at(hour, minute) - clock.wall()
        energy_j += power_w(clock.wall()) * step_s
        clock.advance(step_s)
        points.append((clock.wall(), energy_j))
    return points


# Energy per hour, by hand:
#   10:00-11:00  10:40-11:00 at 300 W                          = 360 kJ = 0.100 kWh
#   11:00-12:00  11:00-11:30 at 300 W + 11:30-12:00 at 120 W   = 540 + 216 kJ = 0.210 kWh
#   12:00-13:00  12:00-12:45 at 120 W + 12:45-13:00 at 600 W   = 324 + 540 kJ = 0.240 kWh
#   13:00-14:00  13:00-13:20 at 600 W                          = 720 kJ = 0.200 kWh
HOURLY_J = [360e3, 756e3, 864e3, 720e3]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start_wall=at(10, 40))


# -- hourly accounting ---------------------------------------------------------------------


def test_run_from_10_40_across_three_hours_with_electricity_maps(
        serve: Callable[..., FakeApi], clock: ManualClock, tmp_path: Path) -> None:
    points = sample_run(clock)
    clock.advance(20 * 3600)  # accounted the next morning: every hour is published
    api = serve(electricity_maps({10: 200.0, 11: 250.0, 12: 300.0, 13: 150.0}))
    provider = ElectricityMaps(EM_TOKEN, base_url=api.url, cache=DiskCache(tmp_path),
                               backoff=Backoff(), clock=clock)

    account = live_emissions(provider, "DE", points, fallback_g_per_kwh=STATIC)

    # 0.100 x 200 + 0.210 x 250 + 0.240 x 300 + 0.200 x 150 = 20 + 52.5 + 72 + 30 = 174.5 g
    assert [r.energy_j for r in account.rows] == pytest.approx(HOURLY_J, rel=1e-12)
    assert [r.co2e_g for r in account.rows] == pytest.approx([20.0, 52.5, 72.0, 30.0], rel=1e-12)
    assert account.co2e_g == pytest.approx(174.5, rel=1e-12)
    assert account.energy_j == pytest.approx(2.7e6, rel=1e-12)
    assert account.g_per_kwh == pytest.approx(174.5 / 0.75, rel=1e-12)
    assert [r.start_utc for r in account.rows] == [dt(10), dt(11), dt(12), dt(13)]
    assert {(r.basis, r.kind, r.zone) for r in account.rows} == {("lifecycle", "measured", "DE")}
    assert account.fallback_energy_j == 0 and account.flags == ()
    [request] = api.seen
    assert request.headers["auth-token"] == EM_TOKEN
    assert request.query == {"zone": "DE", "start": "2025-06-01T10:00:00Z",
                             "end": "2025-06-01T14:00:00Z", "emissionFactorType": "lifecycle",
                             "temporalGranularity": "hourly"}


def test_at_the_end_of_the_run_an_unpublished_hour_falls_back_and_is_asked_again_later(
        serve: Callable[..., FakeApi], clock: ManualClock, tmp_path: Path) -> None:
    points = sample_run(clock)  # accounted at 13:20, when 13:00 has no value yet
    values = {10: 200.0, 11: 250.0, 12: 300.0}
    api = serve(electricity_maps(values))
    provider = ElectricityMaps(EM_TOKEN, base_url=api.url, cache=DiskCache(tmp_path),
                               backoff=Backoff(), clock=clock)

    now = live_emissions(provider, "DE", points, fallback_g_per_kwh=STATIC,
                         fallback_source="OWID 2024", fallback_basis="lifecycle")

    # 20 + 52.5 + 72 g as before, and 0.200 kWh x 400 (static) = 80 g for 13:00: 224.5 g
    assert now.co2e_g == pytest.approx(224.5, rel=1e-12)
    assert now.rows[-1].source == "fallback" and now.rows[-1].g_per_kwh == STATIC
    assert now.fallback_energy_j == pytest.approx(720e3, rel=1e-12)
    assert now.fallback_co2e_g == pytest.approx(80.0, rel=1e-12)
    [flag] = now.flags
    assert flag.code == "intensity-hours-fallback"
    assert "0.2 of 0.75 kWh (1 hour)" in flag.message and "OWID 2024" in flag.message

    # The next day 13:00 is published. 10:00 had settled when fetched (ended 11:00, fetched
    # 13:20, 2 h settle time): it is final and not asked again; 11:00-13:00 are.
    clock.advance(24 * 3600)
    values[13] = 150.0
    later = live_emissions(provider, "DE", points, fallback_g_per_kwh=STATIC)
    assert later.co2e_g == pytest.approx(174.5, rel=1e-12)
    assert later.flags == ()
    assert len(api.seen) == 2
    assert (api.seen[1].query["start"], api.seen[1].query["end"]) == (
        "2025-06-01T11:00:00Z", "2025-06-01T14:00:00Z")


def test_watttime_marginal_five_minute_points_averaged_per_hour(
        serve: Callable[..., FakeApi], clock: ManualClock, tmp_path: Path) -> None:
    basic = "Basic " + base64.b64encode(f"{WT_USER}:{WT_PASSWORD}".encode()).decode()
    points_per_hour = {
        10: [900.0, 1100.0] * 6,  # 12 points, mean 1000 lb/MWh
        11: [500.0] * 12,
        12: [800.0] * 6,  # half the hour missing
    }

    def respond(seen: Seen) -> Reply:
        if seen.path == "/login":
            if seen.headers.get("authorization") != basic:
                return 401, {"error": "bad credentials"}
            return 200, {"token": WT_TOKEN}
        if seen.headers.get("authorization") != f"Bearer {WT_TOKEN}":
            return 401, {"error": "bad token"}
        start = datetime.fromisoformat(seen.query["start"])
        data = [{"point_time": f"2025-06-01T{h:02d}:{5 * i:02d}:00+00:00", "value": v}
                for h, values in points_per_hour.items() if dt(h) >= start
                for i, v in enumerate(values)]
        return 200, {"data": data, "meta": {
            "data_point_period_seconds": 300, "region": seen.query["region"],
            "warnings": [], "signal_type": "co2_moer", "model": {"date": "2024-10-01"},
            "units": "lbs_co2_per_mwh"}}

    points = sample_run(clock)
    clock.advance(20 * 3600)
    api = serve(respond)
    provider = WattTime(WT_USER, WT_PASSWORD, base_url=api.url, region="CAISO_NORTH",
                        cache=DiskCache(tmp_path), backoff=Backoff(), clock=clock)

    account = live_emissions(provider, "US-CAL-CISO", points, fallback_g_per_kwh=STATIC)

    # lb/MWh -> g/kWh: x 0.45359237. Hours: 1000 -> 453.59237, 500 -> 226.796185,
    # 800 -> 362.873896 (6 of 12 points: "estimated"), 13:00 none -> static 400.
    # 0.100 x 453.59237 + 0.210 x 226.796185 + 0.240 x 362.873896 + 0.200 x 400
    #   = 45.359237 + 47.62719885 + 87.08973504 + 80 = 260.07617089 g
    assert [r.g_per_kwh for r in account.rows] == pytest.approx(
        [453.59237, 226.796185, 362.873896, 400.0], rel=1e-12)
    assert account.co2e_g == pytest.approx(260.07617089, rel=1e-12)
    assert [r.kind for r in account.rows] == ["measured", "measured", "estimated", "fallback"]
    assert account.bases == ("marginal",)
    assert {f.code for f in account.flags} == {"intensity-hours-fallback", "intensity-marginal"}
    login, historical = api.seen
    assert login.path == "/login" and login.headers["authorization"] == basic
    assert historical.path == "/v3/historical"
    assert historical.headers["authorization"] == f"Bearer {WT_TOKEN}"
    assert historical.query == {"region": "CAISO_NORTH", "signal_type": "co2_moer",
                                "start": "2025-06-01T10:00:00+00:00",
                                "end": "2025-06-01T14:00:00+00:00"}


def uk_national(periods: dict[tuple[int, int], tuple[float, float | None]]
                ) -> Callable[[Seen], Reply]:
    """``/intensity/{from}/{to}``: half hours ``{(h, m): (forecast, actual)}``."""

    def respond(seen: Seen) -> Reply:
        _, kind, start, end = seen.path.split("/")
        if kind != "intensity":
            return 400, {"error": {"code": "400 Bad Request", "message": "bad path"}}
        lo, hi = parse_z(start), parse_z(end)
        data = [{"from": f"2025-06-01T{h:02d}:{m:02d}Z",
                 "to": (dt(h, m) + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%MZ"),
                 "intensity": {"forecast": f, "actual": a, "index": "moderate"}}
                for (h, m), (f, a) in sorted(periods.items()) if lo <= dt(h, m) < hi]
        return 200, {"data": data}

    return respond


def test_uk_national_half_hours_actual_or_forecast(
        serve: Callable[..., FakeApi], clock: ManualClock, tmp_path: Path) -> None:
    points = sample_run(clock)
    api = serve(uk_national({
        (10, 0): (190.0, 180.0), (10, 30): (230.0, 220.0), (11, 0): (210.0, 200.0),
        (11, 30): (110.0, 100.0), (12, 0): (140.0, 150.0), (12, 30): (260.0, 250.0),
        (13, 0): (300.0, None), (13, 30): (310.0, None)}))
    provider = UKCarbonIntensity(base_url=api.url, cache=DiskCache(tmp_path), backoff=Backoff(),
                                 clock=clock)

    account = live_emissions(provider, "GB", points, fallback_g_per_kwh=STATIC)

    # Half-hour bins (actual where given, else forecast):
    #   10:30  10:40-11:00 at 300 W            = 0.10 kWh x 220 = 22 g
    #   11:00  at 300 W                        = 0.15 kWh x 200 = 30 g
    #   11:30  at 120 W                        = 0.06 kWh x 100 =  6 g
    #   12:00  at 120 W                        = 0.06 kWh x 150 =  9 g
    #   12:30  15 min at 120 W + 15 at 600 W   = 0.18 kWh x 250 = 45 g
    #   13:00  13:00-13:20 at 600 W (forecast) = 0.20 kWh x 300 = 60 g      total 172 g
    assert [r.co2e_g for r in account.rows] == pytest.approx([22, 30, 6, 9, 45, 60], rel=1e-12)
    assert account.co2e_g == pytest.approx(172.0, rel=1e-12)
    assert [r.kind for r in account.rows] == ["measured"] * 5 + ["forecast"]
    assert account.bases == ("operational",)
    [request] = api.seen
    assert request.path == "/intensity/2025-06-01T10:00Z/2025-06-01T14:00Z"
    assert request.query == {} and "authorization" not in request.headers


def test_uk_regional_forecasts(serve: Callable[..., FakeApi], clock: ManualClock,
                               tmp_path: Path) -> None:
    def respond(seen: Seen) -> Reply:
        return 200, {"data": {"regionid": 13, "dnoregion": "UKPN London", "shortname": "London",
                              "data": [{"from": "2025-06-01T10:00Z", "to": "2025-06-01T10:30Z",
                                        "intensity": {"forecast": 120, "index": "low"},
                                        "generationmix": [{"fuel": "wind", "perc": 40.0}]},
                                       {"from": "2025-06-01T10:30Z", "to": "2025-06-01T11:00Z",
                                        "intensity": {"forecast": 140, "index": "low"},
                                        "generationmix": []}]}}

    api = serve(respond)
    provider = UKCarbonIntensity(base_url=api.url, region_id=13, cache=DiskCache(tmp_path),
                                 backoff=Backoff(), clock=clock)
    bins = provider.bins("GB", dt(10), dt(11))
    assert [(b.start_utc, b.end_utc, b.g_per_kwh, b.kind) for b in bins] == [
        (dt(10), dt(10, 30), 120.0, "forecast"), (dt(10, 30), dt(11), 140.0, "forecast")]
    assert {(b.zone, b.basis) for b in bins} == {("GB-region-13", "operational")}
    assert api.seen[0].path == "/regional/intensity/2025-06-01T10:00Z/2025-06-01T11:00Z/regionid/13"


def test_uk_refuses_other_zones_without_asking(serve: Callable[..., FakeApi],
                                               clock: ManualClock, tmp_path: Path) -> None:
    api = serve(uk_national({(10, 0): (150.0, 140.0)}))
    backoff = Backoff()
    provider = UKCarbonIntensity(base_url=api.url, cache=DiskCache(tmp_path), backoff=backoff,
                                 clock=clock)
    assert len(provider.bins("gb", dt(10), dt(10, 30))) == 1  # cached under GB now
    with pytest.raises(ProviderError, match="Great Britain only") as caught:
        provider.bins("FR", dt(10), dt(10, 30))
    assert "electricitymaps" in caught.value.fix and len(api.seen) == 1
    assert backoff.remaining_s(("ukci", api.url), clock.monotonic())[0] == 0  # no pause


# -- failures: timeout, HTTP 500, malformed JSON ---------------------------------------------


def test_a_provider_that_never_answers_times_out_and_the_run_falls_back(
        silent_url: str, clock: ManualClock, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    points = sample_run(clock)
    provider = ElectricityMaps(EM_TOKEN, base_url=silent_url, timeout_s=0.3,
                               cache=DiskCache(tmp_path), backoff=Backoff(), clock=clock)
    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        provider.bins("DE", dt(10, 40), dt(13, 20))
    assert time.monotonic() - started < 2 * 0.3 + 1.0
    assert caught.value.reason == "Electricity Maps did not answer within 0.3 s"
    assert caught.value.fix

    fresh = ElectricityMaps(EM_TOKEN, base_url=silent_url, timeout_s=0.3, backoff=Backoff(),
                            clock=clock)
    with caplog.at_level(logging.WARNING, logger="carbonmonitor"):
        account = live_emissions(fresh, "DE", points, fallback_g_per_kwh=STATIC,
                                 fallback_source="OWID 2024")
    # all 0.75 kWh at the static 400 g/kWh = 300 g
    assert account.co2e_g == pytest.approx(300.0, rel=1e-12)
    assert account.fallback_energy_j == pytest.approx(2.7e6, rel=1e-12)
    [flag] = account.flags
    assert flag.code == "intensity-live-failed"
    assert "did not answer within 0.3 s" in flag.message and "OWID 2024" in flag.message
    assert "did not answer" in caplog.text


@pytest.mark.parametrize(("status", "body", "reason"), [
    (500, {"error": "internal"}, "Electricity Maps answered HTTP 500 (server error): internal"),
    (200, b"{\"data\": [", "Electricity Maps answered with something that is not JSON (10 bytes)"),
    (200, {"zone": "DE"}, "Electricity Maps answered JSON of an unexpected shape (no 'data' list)"),
    (200, {"data": [{"datetime": "yesterday", "carbonIntensity": 1}]},
     "Electricity Maps answered JSON of an unexpected shape (bad point: ValueError)"),
])
def test_server_error_and_malformed_answers_fall_back_and_say_so(
        serve: Callable[..., FakeApi], clock: ManualClock, tmp_path: Path, status: int,
        body: Any, reason: str) -> None:
    api = serve(lambda seen: (status, body))
    points = sample_run(clock)

    def provider() -> ElectricityMaps:
        return ElectricityMaps(EM_TOKEN, base_url=api.url, cache=DiskCache(tmp_path),
                               backoff=Backoff(), clock=clock)

    with pytest.raises(ProviderError) as caught:
        provider().bins("DE", dt(10), dt(14))
    assert caught.value.reason == reason and caught.value.fix
    account = live_emissions(provider(), "DE", points, fallback_g_per_kwh=STATIC)
    assert account.co2e_g == pytest.approx(300.0, rel=1e-12)
    assert [f.code for f in account.flags] == ["intensity-live-failed"]
    assert reason in account.flags[0].message
    assert list(tmp_path.rglob("*.json")) == []  # nothing cached from a failure


def test_a_bug_in_a_plugin_provider_is_contained(clock: ManualClock) -> None:
    class Broken:
        name = "broken"

        def bins(self, zone: str, start_utc: datetime, end_utc: datetime) -> list[IntensityBin]:
            raise KeyError("oops")

    account = live_emissions(Broken(), "DE", sample_run(clock), fallback_g_per_kwh=STATIC)
    assert account.co2e_g == pytest.approx(300.0, rel=1e-12)
    assert account.flags[0].code == "intensity-live-failed"
    assert "internal error KeyError" in account.flags[0].message


def test_redirects_are_not_followed(serve: Callable[..., FakeApi], clock: ManualClock) -> None:
    elsewhere = serve(electricity_maps({10: 1.0}))
    api = serve(lambda seen: (302, f"{elsewhere.url}{seen.path}".encode()))
    provider = ElectricityMaps(EM_TOKEN, base_url=api.url, backoff=Backoff(), clock=clock)
    with pytest.raises(ProviderError, match="redirect"):
        provider.bins("DE", dt(10), dt(11))
    assert elsewhere.seen == []  # the token was not replayed to another address


# -- secrets ---------------------------------------------------------------------------------


def test_tokens_never_reach_errors_logs_cache_or_repr(
        serve: Callable[..., FakeApi], clock: ManualClock, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="carbonmonitor")
    clock.advance(24 * 3600)
    good = serve(electricity_maps({10: 200.0, 11: 250.0}))
    ok = ElectricityMaps(EM_TOKEN, base_url=good.url, cache=DiskCache(tmp_path),
                         backoff=Backoff(), clock=clock)
    assert len(ok.bins("DE", dt(10), dt(12))) == 2
    refused = ElectricityMaps(EM_TOKEN + "-old", base_url=good.url, backoff=Backoff(),
                              clock=clock)
    with pytest.raises(ProviderError) as em_error:  # the server echoes the token it got
        refused.bins("DE", dt(12), dt(13))
    assert "refused the credentials (HTTP 401): Invalid auth-token ***" in em_error.value.reason

    echo = serve(lambda seen: (403, {"message": f"denied: {seen.headers.get('authorization')}"}))
    wt = WattTime(WT_USER, WT_PASSWORD, base_url=echo.url, region="PJM", backoff=Backoff(),
                  cache=DiskCache(tmp_path), clock=clock)
    with pytest.raises(ProviderError) as wt_error:
        wt.bins("PJM", dt(10), dt(11))
    basic = base64.b64encode(f"{WT_USER}:{WT_PASSWORD}".encode()).decode()
    assert echo.seen[0].headers["authorization"] == f"Basic {basic}"

    secrets = (EM_TOKEN, WT_PASSWORD, basic)
    cached = [p.read_text() for p in tmp_path.rglob("*") if p.is_file()]
    assert cached  # the good answer was cached
    texts = [*cached, caplog.text, str(em_error.value), em_error.value.fix, str(wt_error.value),
             repr(ok), repr(refused), repr(wt)]
    for text in texts:
        for secret in secrets:
            assert secret not in text


# -- cache and back-off ------------------------------------------------------------------------


def test_a_second_call_is_served_from_the_disk_cache(
        serve: Callable[..., FakeApi], clock: ManualClock, tmp_path: Path) -> None:
    clock.advance(24 * 3600)
    api = serve(electricity_maps({10: 200.0, 11: 250.0, 12: 300.0}, estimated=(12,)))

    def provider() -> ElectricityMaps:
        return ElectricityMaps(EM_TOKEN, base_url=api.url, cache=DiskCache(tmp_path),
                               backoff=Backoff(), clock=clock)

    first = provider().bins("DE", dt(10), dt(13))
    again = provider().bins("DE", dt(10), dt(13))  # a new process would build a new provider
    assert again == first and len(api.seen) == 1
    assert [b.kind for b in first] == ["measured", "measured", "estimated"]
    assert provider().bins("DE", dt(11, 30), dt(12, 15)) == first[1:]
    assert len(api.seen) == 1
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json"))
    # answers from another API root (here the test server) are kept apart from the real API's
    folder = files[0].split("/")[0]
    assert folder.startswith("electricitymaps") and folder != "electricitymaps"
    assert files == [f"{folder}/DE/lifecycle/20250601T{h}Z.json" for h in (10, 11, 12)]
    direct = ElectricityMaps(EM_TOKEN, base_url=api.url, basis="direct",
                             cache=DiskCache(tmp_path), backoff=Backoff(), clock=clock)
    assert {b.basis for b in direct.bins("DE", dt(10), dt(13))} == {"operational"}
    assert len(api.seen) == 2 and api.seen[1].query["emissionFactorType"] == "direct"


def test_a_forecast_expires_and_a_corrupt_cache_file_is_ignored(
        serve: Callable[..., FakeApi], tmp_path: Path) -> None:
    clock = ManualClock(start_wall=at(9))  # the hours asked for are still ahead: forecasts
    api = serve(uk_national({(10, 0): (150.0, None), (10, 30): (160.0, None)}))
    provider = UKCarbonIntensity(base_url=api.url, cache=DiskCache(tmp_path, ttl_s=900),
                                 backoff=Backoff(), clock=clock)
    first = provider.bins("GB", dt(10), dt(11))
    assert [b.kind for b in first] == ["forecast", "forecast"]
    clock.advance(600)
    assert provider.bins("GB", dt(10), dt(11)) == first and len(api.seen) == 1
    clock.advance(301)  # 901 s after the fetch: the forecast has expired
    assert provider.bins("GB", dt(10), dt(11)) == first and len(api.seen) == 2

    [path] = tmp_path.rglob("*.json")
    for garbage in ("{not json", "[]", json.dumps({"version": 1, "bins": "x"})):
        path.write_text(garbage)
        assert provider.bins("GB", dt(10), dt(11)) == first
    assert len(api.seen) == 5
    assert json.loads(path.read_text())["bins"][0]["g_per_kwh"] == 150.0  # rewritten


def test_after_a_failure_the_provider_is_left_alone_for_a_while(
        serve: Callable[..., FakeApi], clock: ManualClock) -> None:
    healthy = False

    def respond(seen: Seen) -> Reply:
        return electricity_maps({10: 200.0})(seen) if healthy else (500, {"error": "down"})

    api = serve(respond)
    backoff = Backoff(initial_s=60.0, max_s=100.0)
    provider = ElectricityMaps(EM_TOKEN, base_url=api.url, backoff=backoff, clock=clock)

    def ask() -> str:
        try:
            provider.bins("DE", dt(10), dt(11))
        except ProviderError as err:
            return err.reason
        return "ok"

    assert "HTTP 500" in ask() and len(api.seen) == 1
    assert ask() == ("Electricity Maps is not asked for 60 s more after an earlier failure "
                     "(Electricity Maps answered HTTP 500 (server error): down)")
    clock.advance(59)
    assert "not asked" in ask() and len(api.seen) == 1
    clock.advance(1)
    assert "HTTP 500" in ask() and len(api.seen) == 2  # second failure: pause 120 s, capped 100
    clock.advance(99)
    assert "not asked for 1 s more" in ask() and len(api.seen) == 2
    clock.advance(1)
    healthy = True
    assert ask() == "ok" and len(api.seen) == 3
    healthy = False
    clock.advance(3600)
    assert "HTTP 500" in ask()
    assert "not asked for 60 s more" in ask()  # a success reset the pause


# -- the pure accounting -----------------------------------------------------------------------


def bin_(start: datetime, end: datetime, g: float) -> IntensityBin:
    return IntensityBin(start, end, g, "operational", "measured", "GB", "test")


def test_uncovered_part_of_an_hour_is_its_own_fallback_row_and_pue_scales_grams() -> None:
    # 1 kW from 10:00 to 11:00 (1 kWh); only 10:00-10:30 has a bin (100 g/kWh).
    points = [(at(10), 0.0), (at(10, 20), 1.2e6), (at(11), 3.6e6)]
    account = hourly_emissions(points, [bin_(dt(10), dt(10, 30), 100.0)],
                               fallback_g_per_kwh=300.0, pue=1.5)
    # 0.5 kWh x 1.5 x 100 = 75 g; 0.5 kWh x 1.5 x 300 = 225 g
    assert [(r.start_utc, r.end_utc, r.source) for r in account.rows] == [
        (dt(10), dt(10, 30), "test"), (dt(10, 30), dt(11), "fallback")]
    assert [r.co2e_g for r in account.rows] == pytest.approx([75.0, 225.0], rel=1e-12)
    assert account.energy_j == pytest.approx(3.6e6, rel=1e-12)
    assert account.live_share == pytest.approx(0.5, rel=1e-12)


def test_energy_at_one_instant_and_empty_runs() -> None:
    one = bin_(dt(10), dt(11), 100.0)
    instant = hourly_emissions([(at(10, 30), 0.0), (at(10, 30), 3.6e5)], [one],
                               fallback_g_per_kwh=300.0)
    assert instant.co2e_g == pytest.approx(10.0, rel=1e-12)  # 0.1 kWh x 100
    for points in ([], [(at(10), 5.0)]):
        empty = hourly_emissions(points, [one], fallback_g_per_kwh=300.0)
        assert (empty.rows, empty.co2e_g, empty.g_per_kwh) == ((), 0, None)


@pytest.mark.parametrize(("points", "bins", "message"), [
    ([(at(11), 0.0), (at(10), 1.0)], [], "time order"),
    ([(at(10), 5.0), (at(11), 1.0)], [], "must not decrease"),
    ([(at(10), 0.0), (at(11), float("nan"))], [], "finite"),
    ([(at(10), 0.0), (at(11), 1.0)],
     [bin_(dt(10), dt(11), 1.0), bin_(dt(10, 30), dt(11, 30), 1.0)], "overlap"),
])
def test_malformed_accounting_input_is_refused(points: list[tuple[float, float]],
                                               bins: list[IntensityBin], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        hourly_emissions(points, bins, fallback_g_per_kwh=300.0)


def test_mixed_bases_are_flagged() -> None:
    points = [(at(10), 0.0), (at(12), 7.2e6)]
    account = hourly_emissions(points, [bin_(dt(10), dt(11), 100.0)], fallback_g_per_kwh=300.0,
                               fallback_basis="lifecycle")
    assert {f.code for f in account.flags} == {"intensity-hours-fallback", "intensity-mixed-basis"}
    assert "lifecycle, operational" in next(
        f.message for f in account.flags if f.code == "intensity-mixed-basis")


def test_points_from_a_stored_series() -> None:
    nan = float("nan")
    points = points_from_series(at(10), [0.0, 10.0, 20.0],
                                {"cpu": [0.0, 100.0, 250.0], "gpu": [0.0, nan, 400.0]})
    assert points == [(at(10), 0.0), (at(10) + 10, 100.0), (at(10) + 20, 650.0)]


# -- choosing a provider from options ----------------------------------------------------------


def test_make_provider_checks_options_before_the_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Did you mean 'electricitymaps'"):
        make_provider("electricitymap", token="t", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="CARBONMONITOR_ELECTRICITYMAPS_TOKEN"):
        make_provider("electricitymaps", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="CARBONMONITOR_WATTTIME_PASSWORD"):
        make_provider("watttime", username="me", region="CAISO_NORTH", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="operational factors only"):
        make_provider("ukci", basis="lifecycle", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="Did you mean 'lifecycle'"):
        make_provider("electricitymaps", token="t", basis="lifecyle", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="1-17"):
        make_provider("ukci", region="London", cache_dir=tmp_path)
    uk = make_provider("UKCI", region="13", url="http://127.0.0.1:9", cache_dir=tmp_path)
    assert isinstance(uk, UKCarbonIntensity) and uk.region_id == 13
    assert uk.base_url == "http://127.0.0.1:9"
    em = make_provider("electricitymaps", token="t", basis="direct", cache_dir=tmp_path)
    assert isinstance(em, ElectricityMaps) and em.basis == "operational"
    assert em.base_url == "https://api.electricitymap.org"
    wt = make_provider("watttime", username="me", password="pw", region="CAISO_NORTH",
                       cache_dir=tmp_path)
    assert isinstance(wt, WattTime) and wt.basis == "marginal"


def test_overlapping_periods_from_a_provider_are_a_failure(
        serve: Callable[..., FakeApi], clock: ManualClock) -> None:
    twice = {"zone": "DE", "data": [
        {"datetime": "2025-06-01T10:00:00.000Z", "carbonIntensity": 200, "isEstimated": False},
        {"datetime": "2025-06-01T10:00:00.000Z", "carbonIntensity": 210, "isEstimated": False}]}
    api = serve(lambda seen: (200, twice))
    provider = ElectricityMaps(EM_TOKEN, base_url=api.url, backoff=Backoff(), clock=clock)
    account = live_emissions(provider, "DE", sample_run(clock), fallback_g_per_kwh=STATIC)
    assert account.co2e_g == pytest.approx(300.0, rel=1e-12)
    assert "overlapping periods at 2025-06-01 10:00" in account.flags[0].message


# -- through a run ---------------------------------------------------------------------------


def tracked_sample_run(api: FakeApi, clock: ManualClock) -> Any:
    """The sample run (300 W from 10:40, 120 W from 11:30, 600 W from 12:45 to 13:20) measured
    by a Tracker ticking at the sample times, with intensity_provider=electricitymaps."""
    from carbonmonitor import FakeBackend, Tracker

    start = at(10, 40)
    power = FakeBackend({"cpu": [(0.0, 300.0), (at(11, 30) - start, 120.0),
                                 (at(12, 45) - start, 600.0)]})
    tracker = Tracker(backend=[power], clock=clock, sampling="manual", quiet=True, db="off",
                      country="DE", attribution="machine", intensity_provider="electricitymaps",
                      intensity_url=api.url, electricitymaps_token=EM_TOKEN)
    tracker.start()
    for hour, minute in SAMPLES[1:]:
        clock.advance(at(hour, minute) - clock.wall())
        tracker.tick()
    result = tracker.stop()
    return result


def test_a_tracked_run_from_10_40_is_accounted_hour_by_hour(
        serve: Callable[..., FakeApi], clock: ManualClock) -> None:
    """The same run, measured by a Tracker (scripted power, ticks at the sample times) with
    intensity_provider=electricitymaps: the result's CO2e is the hourly sum, 174.5 g."""
    import carbonmonitor

    api = serve(electricity_maps({10: 200.0, 11: 250.0, 12: 300.0, 13: 150.0}))
    result = tracked_sample_run(api, clock)
    assert result.energy_j == pytest.approx(2.7e6, rel=1e-9)
    assert result.co2e_g == pytest.approx(174.5, rel=1e-9)
    em = result.emissions
    assert em.time_resolved == "electricitymaps" and len(em.hourly) == 4
    assert [b.co2e_g for b in em.hourly] == pytest.approx([20.0, 52.5, 72.0, 30.0], rel=1e-9)
    assert em.hourly[0].start == "2025-06-01T10:00:00+00:00"
    assert "hourly     4 bins from electricitymaps" in carbonmonitor.format_summary(result)
    # every joule has its hour's factor: the interval is the energy's alone
    energy = result.energy_uncertainty
    assert em.uncertainty.low == pytest.approx(174.5 * energy.low / result.energy_j, rel=1e-9)
    assert em.uncertainty.high == pytest.approx(174.5 * energy.high / result.energy_j, rel=1e-9)
    assert "hourly factors" in em.uncertainty.rule and "envelope" not in em.uncertainty.rule
    assert result.options["electricitymaps_token"]["value"] == "<set>"
    assert EM_TOKEN not in result.to_json()


def test_a_tracked_run_with_an_unpublished_hour_widens_only_that_hours_interval(
        serve: Callable[..., FakeApi], clock: ManualClock) -> None:
    """As above, but the provider has not published 13:00: that hour's 0.2 kWh (see the sample
    run) is accounted at the static factor, and only its grams get the factor's envelope."""
    api = serve(electricity_maps({10: 200.0, 11: 250.0, 12: 300.0}))
    result = tracked_sample_run(api, clock)
    em, static = result.emissions, result.intensity.g_per_kwh
    fallback_g = 0.2 * static  # 13:00-13:20: 0.2 kWh at the static factor
    assert result.co2e_g == pytest.approx(144.5 + fallback_g, rel=1e-9)
    spread = em.factor_spread
    assert spread is not None
    energy = result.energy_uncertainty
    assert em.uncertainty.low == pytest.approx(
        energy.low / result.energy_j * (144.5 + 0.2 * spread.low_g_per_kwh), rel=1e-9)
    assert em.uncertainty.high == pytest.approx(
        energy.high / result.energy_j * (144.5 + 0.2 * spread.high_g_per_kwh), rel=1e-9)
    assert "fallback hours xfactor-envelope-v1" in em.uncertainty.rule


def test_a_tracked_run_whose_provider_fails_keeps_the_static_factor_and_says_so(
        silent_url: str, clock: ManualClock) -> None:
    from carbonmonitor import FakeBackend, Tracker

    tracker = Tracker(backend=[FakeBackend({"cpu": 100.0})], clock=clock, sampling="manual",
                      quiet=True, db="off", country="DE", attribution="machine",
                      intensity_provider="electricitymaps", intensity_url=silent_url,
                      electricitymaps_token=EM_TOKEN)
    tracker.start()
    clock.advance(3600)
    result = tracker.stop()
    assert result.co2e_g == pytest.approx(0.1 * result.intensity.g_per_kwh, rel=1e-9)
    assert "intensity-live-failed" in {f.code for f in result.flags}
    # the static factor for every hour: its envelope widens the interval
    spread = result.emissions.factor_spread
    assert spread is not None and spread.low_g_per_kwh < result.intensity.g_per_kwh
    assert result.emissions.uncertainty.high == pytest.approx(
        result.energy_uncertainty.high / 3.6e6 * spread.high_g_per_kwh, rel=1e-9)


def test_watttime_needs_its_own_region() -> None:
    with pytest.raises(ConfigError, match="CAISO_NORTH"):
        make_provider("watttime", username=WT_USER, password=WT_PASSWORD)


def test_re_accounting_a_live_run_keeps_its_hours_unless_it_moves(
        serve: Callable[..., FakeApi], clock: ManualClock) -> None:
    import carbonmonitor
    from carbonmonitor import FakeBackend, Tracker

    api = serve(electricity_maps({10: 200.0, 11: 250.0, 12: 300.0, 13: 150.0}))
    tracker = Tracker(backend=[FakeBackend({"cpu": 300.0})], clock=clock, sampling="manual",
                      quiet=True, db="off", country="DE", attribution="machine",
                      intensity_provider="electricitymaps", intensity_url=api.url,
                      electricitymaps_token=EM_TOKEN)
    tracker.start()
    clock.advance(3600)
    run = tracker.stop()  # 10:40-11:40 at 300 W: 0.1 kWh at 200 g + 0.2 kWh at 250 g
    assert run.co2e_g == pytest.approx(0.1 * 200 + 0.2 * 250, rel=1e-9)
    assert run.emissions.time_resolved == "electricitymaps"
    higher = carbonmonitor.reaccount(run, pue=1.2)
    assert higher.emissions.time_resolved == "electricitymaps"
    assert higher.co2e_g == pytest.approx(run.co2e_g * 1.2, rel=1e-12)
    moved = carbonmonitor.reaccount(run, country="FR")
    assert moved.emissions.time_resolved == "" and moved.emissions.hourly == ()
    assert "hourly factors of the run's own place were not carried over" in \
        {f.code: f for f in moved.flags}["reaccounted"].message


def test_the_same_period_returned_twice_counts_once(serve: Callable[..., FakeApi],
                                                    clock: ManualClock) -> None:
    """A period at the boundary of two request pieces may come back in both answers."""
    twice = {"zone": "DE", "data": [
        {"datetime": f"2025-06-01T{h:02d}:00:00.000Z", "carbonIntensity": 200,
         "isEstimated": False} for h in (10, 11, 11, 12, 13)]}
    api = serve(lambda seen: (200, twice))
    provider = ElectricityMaps(EM_TOKEN, base_url=api.url, backoff=Backoff(), clock=clock)
    account = live_emissions(provider, "DE", sample_run(clock), fallback_g_per_kwh=STATIC)
    assert account.flags == () and account.co2e_g == pytest.approx(0.75 * 200, rel=1e-12)
