"""Cloud detection from fake DMI trees and loopback metadata servers that enforce each
provider's request shape; opt-in IP geolocation against a loopback service.

Every server here listens on 127.0.0.1 only; the real endpoints are never contacted.
"""

from __future__ import annotations

import inspect
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from carbonmonitor.carbon import detect
from carbonmonitor.carbon.detect import Detection, detect_cloud, dmi_provider, geolocate_ip

AZURE_TAG = "7783-7084-3265-9085-8269-3286-77"
TOKEN = "AQAEAFake-imdsv2-token=="
# The headers the three providers' endpoints look at; requests are recorded with these only,
# so an exact comparison also proves that nothing else of the kind (X-Forwarded-For, another
# provider's header) was sent.
WATCHED = ("x-aws-ec2-metadata-token-ttl-seconds", "x-aws-ec2-metadata-token", "metadata-flavor",
           "metadata", "x-forwarded-for")

# DMI trees as the kernel shows them (values from the providers' docs and the cited detectors).
AWS_NITRO = {"sys_vendor": "Amazon EC2", "product_name": "m5.large", "bios_vendor": "Amazon EC2",
             "bios_version": "1.0", "board_vendor": "Amazon EC2", "chassis_vendor": "Amazon EC2",
             "chassis_asset_tag": "Amazon EC2"}
AWS_XEN = {"sys_vendor": "Xen", "product_name": "HVM domU", "bios_vendor": "Xen",
           "bios_version": "4.11.amazon", "chassis_vendor": "Xen"}
GCE = {"sys_vendor": "Google", "product_name": "Google Compute Engine", "bios_vendor": "Google",
       "bios_version": "Google", "board_vendor": "Google", "chassis_vendor": "Google"}
AZURE = {"sys_vendor": "Microsoft Corporation", "product_name": "Virtual Machine",
         "bios_vendor": "Microsoft Corporation", "bios_version": "Hyper-V UEFI Release v4.1",
         "board_vendor": "Microsoft Corporation", "chassis_vendor": "Microsoft Corporation",
         "chassis_asset_tag": AZURE_TAG}
HYPERV_DESKTOP = {**AZURE, "chassis_asset_tag": "None"}
BARE_METAL = {"sys_vendor": "Dell Inc.", "product_name": "PowerEdge R750",
              "bios_vendor": "Dell Inc.", "bios_version": "1.6.5", "board_vendor": "Dell Inc.",
              "chassis_vendor": "Dell Inc.", "chassis_asset_tag": ""}
CHROMEBOOK = {"sys_vendor": "Google", "product_name": "Eve", "bios_vendor": "coreboot",
              "bios_version": "Google_Eve.9584.230.0"}
KVM_GUEST = {"sys_vendor": "QEMU", "product_name": "Standard PC (Q35 + ICH9, 2009)",
             "bios_vendor": "SeaBIOS", "bios_version": "1.16.2-debian-1.16.2-1"}
NOT_CLOUD = {"hyperv-desktop": HYPERV_DESKTOP, "bare-metal": BARE_METAL,
             "chromebook": CHROMEBOOK, "kvm-guest": KVM_GUEST, "container-no-dmi": None}


def dmi_tree(root: Path, fields: dict[str, str] | None) -> Path:
    """A sysfs root whose class/dmi/id holds ``fields`` (None: no DMI at all, as in a
    container or on a board without SMBIOS)."""
    sysfs = root / "sys"
    sysfs.mkdir()
    if fields is not None:
        dmi = sysfs / "class" / "dmi" / "id"
        dmi.mkdir(parents=True)
        for name, value in fields.items():
            (dmi / name).write_text(value + "\n", encoding="utf-8")
    return sysfs


# --- loopback metadata servers -------------------------------------------------------------

@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]


HANG = object()  # a route that never answers (until the test ends)
Routes = dict[tuple[str, str], "tuple[int, str] | object"]
Shape = Callable[[str, str, dict[str, str]], "int | None"]


@dataclass
class FakeServer:
    """An HTTP server on 127.0.0.1 that records every request, rejects those the real
    provider rejects (``shape`` returns the status), and answers from ``routes``."""

    shape: Shape
    routes: Routes
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    extra_headers: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.seen.append(Seen(self.command, self.path,
                                       {k: v for k, v in headers.items() if k in WATCHED}))
                status = outer.shape(self.command, self.path, headers)
                answer = outer.routes.get((self.command, self.path), (404, "Not Found"))
                if status is None and answer is HANG:
                    outer.release.wait(30)
                    return
                if status is None:
                    assert isinstance(answer, tuple)
                    status, body = answer
                else:
                    body = "rejected"
                data = body.encode()
                self.send_response(status)
                for name, value in outer.extra_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = _serve

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def aws_shape(method: str, path: str, headers: dict[str, str]) -> int | None:
    """IMDSv2: PUT /latest/api/token needs a TTL of 1-21600 s and no X-Forwarded-For (403);
    every GET needs a valid token when IMDSv2 is required (401)."""
    if method == "PUT":
        ttl = headers.get("x-aws-ec2-metadata-token-ttl-seconds", "")
        if "x-forwarded-for" in headers:
            return 403
        return None if ttl.isdigit() and 1 <= int(ttl) <= 21600 else 400
    return None if headers.get("x-aws-ec2-metadata-token") == TOKEN else 401


def gcp_shape(method: str, path: str, headers: dict[str, str]) -> int | None:
    """GCE metadata server: Metadata-Flavor: Google required, X-Forwarded-For refused (403)."""
    if headers.get("metadata-flavor") != "Google" or "x-forwarded-for" in headers:
        return 403
    return None


def azure_shape(method: str, path: str, headers: dict[str, str]) -> int | None:
    """Azure IMDS: Metadata: true, no X-Forwarded-For and an api-version are required (400)."""
    query = parse_qs(urlsplit(path).query)
    if headers.get("metadata") != "true" or "x-forwarded-for" in headers:
        return 400
    return None if query.get("api-version") else 400


def accept_all(method: str, path: str, headers: dict[str, str]) -> int | None:
    return None


AWS_TOKEN = ("PUT", "/latest/api/token")
AWS_REGION = ("GET", "/latest/meta-data/placement/region")
AWS_TYPE = ("GET", "/latest/meta-data/instance-type")
GCP_ZONE = ("GET", "/computeMetadata/v1/instance/zone")
GCP_TYPE = ("GET", "/computeMetadata/v1/instance/machine-type")
AZURE_COMPUTE = ("GET", "/metadata/instance/compute?api-version=2021-02-01&format=json")

AWS_ROUTES: Routes = {AWS_TOKEN: (200, TOKEN), AWS_REGION: (200, "eu-west-1"),
                      AWS_TYPE: (200, "m5.large")}
GCP_ROUTES: Routes = {GCP_ZONE: (200, "projects/123456789012/zones/europe-west1-b"),
                      GCP_TYPE: (200, "projects/123456789012/machineTypes/n2-standard-8")}
AZURE_ROUTES: Routes = {AZURE_COMPUTE: (200, json.dumps(
    {"location": "westeurope", "vmSize": "Standard_D4s_v3", "name": "vm1", "osType": "Linux"}))}
SHAPES = {"aws": aws_shape, "gcp": gcp_shape, "azure": azure_shape}
ROUTES = {"aws": AWS_ROUTES, "gcp": GCP_ROUTES, "azure": AZURE_ROUTES}
TREES = {"aws": AWS_NITRO, "gcp": GCE, "azure": AZURE}


@pytest.fixture
def serve() -> Iterator[Callable[..., FakeServer]]:
    servers: list[FakeServer] = []

    def start(shape: Shape, routes: Routes, **extra: str) -> FakeServer:
        server = FakeServer(shape, dict(routes), extra_headers=extra)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def provider_server(serve: Callable[..., FakeServer], provider: str,
                    **changes: tuple[int, str] | object) -> FakeServer:
    routes = dict(ROUTES[provider])
    for key, value in changes.items():
        routes[{"token": AWS_TOKEN, "region": AWS_REGION, "type": AWS_TYPE, "zone": GCP_ZONE,
                "machine": GCP_TYPE, "compute": AZURE_COMPUTE}[key]] = value
    return serve(SHAPES[provider], routes)


# --- DMI -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "expected"), [
    (AWS_NITRO, "aws"), (AWS_XEN, "aws"), (GCE, "gcp"), (AZURE, "azure"),
    *((tree, None) for tree in NOT_CLOUD.values()),
], ids=["aws-nitro", "aws-xen", "gce", "azure", *NOT_CLOUD])
def test_dmi_names_the_provider(tmp_path: Path, fields: dict[str, str] | None,
                                expected: str | None) -> None:
    assert dmi_provider(dmi_tree(tmp_path, fields)) == expected


def test_unreadable_dmi_files_count_as_absent(tmp_path: Path) -> None:
    root = dmi_tree(tmp_path, AWS_NITRO)

    def only_sys_vendor(path: Path) -> str:
        if path.name != "sys_vendor":
            raise PermissionError(13, "Permission denied", str(path))
        return path.read_text(encoding="utf-8").strip()

    def nothing(path: Path) -> str:
        raise PermissionError(13, "Permission denied", str(path))

    assert dmi_provider(root, only_sys_vendor) == "aws"
    assert dmi_provider(root, nothing) is None
    assert detect_cloud(root, read_text=nothing) == Detection(None)


# --- the fake servers enforce the shapes (so the exact-request tests below mean something) --

@pytest.mark.parametrize(("provider", "key", "status"), [
    ("aws", AWS_REGION, 401), ("gcp", GCP_ZONE, 403), ("azure", AZURE_COMPUTE, 400)])
def test_fake_servers_reject_requests_without_the_provider_header(
        serve: Callable[..., FakeServer], provider: str, key: tuple[str, str],
        status: int) -> None:
    server = serve(SHAPES[provider], ROUTES[provider])
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(urllib.request.Request(server.url + key[1], method=key[0]),
                               timeout=5)
    err.value.close()
    assert err.value.code == status


# --- detection against each provider ---------------------------------------------------------

@pytest.mark.parametrize("tree", [AWS_NITRO, AWS_XEN], ids=["nitro", "xen"])
def test_aws_imdsv2_requests_and_answer(tmp_path: Path, serve: Callable[..., FakeServer],
                                        tree: dict[str, str]) -> None:
    server = provider_server(serve, "aws")
    found = detect_cloud(dmi_tree(tmp_path, tree), metadata_url=server.url, timeout_s=5)
    assert (found.provider, found.region, found.instance_type) == ("aws", "eu-west-1",
                                                                    "m5.large")
    assert found.flags == () and found.requests_sent == 3
    assert server.seen == [
        Seen("PUT", "/latest/api/token", {"x-aws-ec2-metadata-token-ttl-seconds": "60"}),
        Seen("GET", "/latest/meta-data/placement/region", {"x-aws-ec2-metadata-token": TOKEN}),
        Seen("GET", "/latest/meta-data/instance-type", {"x-aws-ec2-metadata-token": TOKEN}),
    ]


def test_gcp_requests_and_region_from_zone(tmp_path: Path,
                                           serve: Callable[..., FakeServer]) -> None:
    server = provider_server(serve, "gcp")
    found = detect_cloud(dmi_tree(tmp_path, GCE), metadata_url=server.url, timeout_s=5)
    assert found == Detection("gcp", "europe-west1", "n2-standard-8",
                              "DMI product_name 'Google Compute Engine'", (), 2)
    assert server.seen == [
        Seen("GET", "/computeMetadata/v1/instance/zone", {"metadata-flavor": "Google"}),
        Seen("GET", "/computeMetadata/v1/instance/machine-type", {"metadata-flavor": "Google"}),
    ]


def test_azure_request_and_answer(tmp_path: Path, serve: Callable[..., FakeServer]) -> None:
    server = provider_server(serve, "azure")
    found = detect_cloud(dmi_tree(tmp_path, AZURE), metadata_url=server.url + "/", timeout_s=5)
    assert found == Detection("azure", "westeurope", "Standard_D4s_v3",
                              f"DMI chassis_asset_tag {AZURE_TAG!r}", (), 1)
    assert server.seen == [Seen(
        "GET", "/metadata/instance/compute?api-version=2021-02-01&format=json",
        {"metadata": "true"})]


def test_default_endpoints_are_the_providers_own() -> None:
    assert detect.DEFAULT_METADATA_URLS == {"aws": "http://169.254.169.254",
                                            "gcp": "http://metadata.google.internal",
                                            "azure": "http://169.254.169.254"}


def test_a_missing_instance_type_keeps_the_region(tmp_path: Path,
                                                  serve: Callable[..., FakeServer]) -> None:
    server = provider_server(serve, "aws", type=(404, "Not Found"))
    found = detect_cloud(dmi_tree(tmp_path, AWS_NITRO), metadata_url=server.url, timeout_s=5)
    assert (found.region, found.instance_type, found.requests_sent) == ("eu-west-1", None, 3)
    assert [f.code for f in found.flags] == ["cloud-instance-type-unknown"]
    assert "instance_type=" in found.flags[0].fix


# --- failures become flags -------------------------------------------------------------------

FAILURES = [
    ("aws", {"token": (500, "Internal Server Error")}, 1, "HTTP 500"),
    ("aws", {"token": (200, "")}, 1, "empty or malformed token"),
    ("aws", {"region": (200, "<html><body>captive portal</body></html>")}, 2, "not a region"),
    ("aws", {"region": (500, "oops")}, 2, "HTTP 500"),
    ("gcp", {"zone": (500, "oops")}, 1, "HTTP 500"),
    ("gcp", {"zone": (200, "europe-west1-b")}, 1, "not projects/N/zones/Z"),
    ("azure", {"compute": (500, "oops")}, 1, "HTTP 500"),
    ("azure", {"compute": (200, "{not json")}, 1, "no JSON"),
    ("azure", {"compute": (200, json.dumps({"vmSize": "Standard_D2s_v3"}))}, 1, "no usable"),
    ("azure", {"compute": (200, json.dumps(["westeurope"]))}, 1, "no usable location"),
]


@pytest.mark.parametrize(("provider", "changes", "sent", "why"), FAILURES)
def test_metadata_failures_give_a_flag_not_an_error(
        tmp_path: Path, serve: Callable[..., FakeServer], provider: str,
        changes: dict[str, tuple[int, str]], sent: int, why: str) -> None:
    server = provider_server(serve, provider, **changes)
    found = detect_cloud(dmi_tree(tmp_path, TREES[provider]), metadata_url=server.url,
                         timeout_s=5)
    assert (found.provider, found.region, found.instance_type) == (provider, None, None)
    assert found.requests_sent == sent == len(server.seen)
    [flag] = found.flags
    assert flag.code == "cloud-metadata-unavailable"
    assert why in flag.message and server.url in flag.message
    assert "cloud_region=" in flag.fix and "metadata_url=" in flag.fix


def test_refused_connection_gives_a_flag(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    found = detect_cloud(dmi_tree(tmp_path, GCE), metadata_url=f"http://127.0.0.1:{port}",
                         timeout_s=5)
    assert (found.provider, found.region, found.requests_sent) == ("gcp", None, 1)
    assert "ConnectionRefusedError" in found.flags[0].message


def test_a_silent_endpoint_is_given_up_within_the_timeout(tmp_path: Path) -> None:
    timeout_s = 0.2
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        start = time.monotonic()
        found = detect_cloud(dmi_tree(tmp_path, AWS_NITRO), metadata_url=url,
                             timeout_s=timeout_s)
        elapsed = time.monotonic() - start
    assert elapsed < detect.MAX_REQUESTS * timeout_s + 0.5
    assert (found.provider, found.region, found.requests_sent) == ("aws", None, 1)
    assert "no answer in time" in found.flags[0].message
    assert "hop-limit 2" in found.flags[0].fix  # the usual cause in a container on EC2


def test_all_requests_together_stay_within_the_deadline(
        tmp_path: Path, serve: Callable[..., FakeServer]) -> None:
    timeout_s = 0.25
    server = provider_server(serve, "aws", region=HANG)
    start = time.monotonic()
    found = detect_cloud(dmi_tree(tmp_path, AWS_NITRO), metadata_url=server.url,
                         timeout_s=timeout_s)
    assert time.monotonic() - start < detect.MAX_REQUESTS * timeout_s + 0.5
    assert (found.region, found.requests_sent) == (None, 2)
    assert [s.path for s in server.seen] == ["/latest/api/token",
                                             "/latest/meta-data/placement/region"]


def test_a_trickling_answer_shortens_the_requests_after_it(tmp_path: Path) -> None:
    """A request may overrun its timeout (a server trickling bytes keeps each socket wait
    short); the requests after it share what is left of 3 x timeout_s, then none is sent."""
    now = [100.0]
    timeouts: list[float] = []
    answers = iter([TOKEN, "eu-west-1", "m5.large"])

    def trickling_first(request: urllib.request.Request, timeout_s: float) -> bytes:
        timeouts.append(timeout_s)
        now[0] += 2.5 if len(timeouts) == 1 else 0.5  # 2.5 x the 1 s timeout, then on time
        return next(answers).encode()

    found = detect_cloud(dmi_tree(tmp_path, AWS_NITRO), metadata_url="http://127.0.0.1:9",
                         timeout_s=1.0, opener=trickling_first,
                         clock=lambda: now[0])
    assert timeouts == [1.0, pytest.approx(0.5)]
    assert (found.region, found.instance_type, found.requests_sent) == ("eu-west-1", None, 2)
    assert [f.code for f in found.flags] == ["cloud-instance-type-unknown"]


def test_redirects_are_not_followed(tmp_path: Path, serve: Callable[..., FakeServer]) -> None:
    elsewhere = serve(accept_all, {})
    server = serve(accept_all, {AWS_TOKEN: (307, "")}, Location=elsewhere.url + "/steal")
    found = detect_cloud(dmi_tree(tmp_path, AWS_NITRO), metadata_url=server.url, timeout_s=5)
    assert found.region is None and "HTTP 307" in found.flags[0].message
    assert elsewhere.seen == []


def test_environment_proxies_are_bypassed(tmp_path: Path, serve: Callable[..., FakeServer],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = serve(accept_all, {})
    for name in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, proxy.url)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    server = provider_server(serve, "azure")
    found = detect_cloud(dmi_tree(tmp_path, AZURE), metadata_url=server.url, timeout_s=5)
    assert found.region == "westeurope" and len(server.seen) == 1 and proxy.seen == []


# --- off-cloud: nothing is sent --------------------------------------------------------------

@pytest.fixture
def blocked_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every way out of the process (connect, create_connection, DNS) records and fails."""
    attempts: list[str] = []

    def refuse(name: str) -> Callable[..., object]:
        def call(*args: object, **kwargs: object) -> object:
            attempts.append(name)
            raise OSError(f"network blocked by the test ({name})")
        return call

    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("connect_ex"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    return attempts


@pytest.mark.parametrize("name", list(NOT_CLOUD))
def test_off_cloud_nothing_is_sent(tmp_path: Path, blocked_network: list[str],
                                   name: str) -> None:
    calls: list[str] = []

    def opener(request: urllib.request.Request, timeout_s: float) -> bytes:
        calls.append(request.full_url)
        raise OSError("unexpected request")

    root = dmi_tree(tmp_path, NOT_CLOUD[name])
    assert detect_cloud(root) == Detection(None)  # the default endpoints, default opener
    assert detect_cloud(root, metadata_url="http://127.0.0.1:9", opener=opener) == Detection(None)
    assert blocked_network == [] and calls == []


def test_the_network_block_is_effective(tmp_path: Path, blocked_network: list[str]) -> None:
    """Control for the test above: a cloud tree does try to connect, and is stopped."""
    found = detect_cloud(dmi_tree(tmp_path, AWS_NITRO), metadata_url="http://127.0.0.1:9",
                         timeout_s=5)
    assert blocked_network and found.region is None and found.requests_sent == 1


# --- IP geolocation (opt-in) -----------------------------------------------------------------

@pytest.mark.parametrize("body", [json.dumps({"ip": "203.0.113.7", "country": "DE"}),
                                  "DE\n", json.dumps({"country_code": "de"})])
def test_geolocation_answers_a_flagged_guess(serve: Callable[..., FakeServer],
                                             body: str) -> None:
    server = serve(accept_all, {("GET", "/"): (200, body)})
    code, flag = geolocate_ip(server.url + "/", timeout_s=5)
    assert code == "DE"
    assert flag.code == "location-ip-guess"
    host = server.url.removeprefix("http://")
    assert host in flag.message and "IP" in flag.message and "country=" in flag.fix
    assert server.seen == [Seen("GET", "/", {})]


@pytest.mark.parametrize("answer", [(200, "Germany"), (200, json.dumps({"country": "XX"})),
                                    (200, json.dumps({"ip": "203.0.113.7"})), (200, "<html>"),
                                    (500, "oops"), (429, "slow down")])
def test_geolocation_failures_give_no_country(serve: Callable[..., FakeServer],
                                              answer: tuple[int, str]) -> None:
    server = serve(accept_all, {("GET", "/"): answer})
    code, flag = geolocate_ip(server.url + "/", timeout_s=5)
    assert code is None
    assert flag.code == "location-ip-unavailable" and "country=" in flag.fix
    assert len(server.seen) == 1


def test_geolocation_timeout(serve: Callable[..., FakeServer]) -> None:
    server = serve(accept_all, {("GET", "/"): HANG})
    start = time.monotonic()
    code, flag = geolocate_ip(server.url + "/", timeout_s=0.2)
    assert time.monotonic() - start < 0.2 + 0.5
    assert code is None and "no answer in time" in flag.message


def test_geolocation_default_is_an_https_service() -> None:
    assert detect.DEFAULT_GEOLOCATION_URL == "https://api.country.is/"
    default = inspect.signature(geolocate_ip).parameters["opener"].default
    assert default is detect.open_with_env_proxies


# --- through a run -------------------------------------------------------------------------


def test_a_run_on_gcp_is_located_by_detection(tmp_path: Path,
                                              serve: Callable[..., FakeServer]) -> None:
    from carbonmonitor import ManualClock, Tracker

    server = provider_server(serve, "gcp")
    clock = ManualClock()
    tracker = Tracker(backend="fake", clock=clock, sampling="manual", quiet=True, db="off",
                      sysfs_root=dmi_tree(tmp_path, GCE), metadata_url=server.url,
                      cloud_detect=True)
    tracker.start()
    clock.advance(10)
    result = tracker.stop()
    assert (result.location.cloud_provider, result.location.cloud_region) == (
        "gcp", "europe-west1")
    assert result.intensity.zone == "gcp:europe-west1" and result.pue.kind == "provider-fleet"
    codes = {f.code for f in result.flags}
    assert "location-detected" in codes and "location-unknown" not in codes
    assert len(server.seen) == 2


def test_a_place_given_by_the_user_is_never_second_guessed(
        tmp_path: Path, serve: Callable[..., FakeServer]) -> None:
    from carbonmonitor import ManualClock, Tracker

    server = provider_server(serve, "gcp")
    tracker = Tracker(backend="fake", clock=ManualClock(), sampling="manual", quiet=True,
                      db="off", sysfs_root=dmi_tree(tmp_path, GCE), metadata_url=server.url,
                      cloud_detect=True, country="DE")
    result = tracker.start().stop()
    assert result.location.country_iso3 == "DEU" and server.seen == []
