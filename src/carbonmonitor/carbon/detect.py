"""Where this machine is, when the user did not say: cloud detection and opt-in IP geolocation.

Cloud detection first reads local DMI data (``{sysfs_root}/class/dmi/id/*``, world-readable,
no network). Only when DMI names AWS, GCP or Azure is that provider's instance-metadata
endpoint asked for the region and instance type, in the request shape the provider documents.
A machine whose DMI names no provider sends nothing. IP geolocation sends one HTTPS request to
a public service and is only called when the user opts in (``ip_geolocation=True``).

Network failures never raise: they come back as :class:`~carbonmonitor.facts.Flag` records
with a fix.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from carbonmonitor.facts import Flag

if TYPE_CHECKING:
    import urllib.request

# http.client, urllib.request, json and carbon.http cost ~40 ms to import: they are imported
# on first use, which off-cloud (DMI names no provider) and without ip_geolocation is never.

__all__ = [
    "DEFAULT_GEOLOCATION_URL",
    "DEFAULT_METADATA_URLS",
    "Detection",
    "Opener",
    "detect_cloud",
    "dmi_provider",
    "geolocate_ip",
    "open_direct",
    "open_with_env_proxies",
]

DEFAULT_METADATA_URLS = {
    "aws": "http://169.254.169.254",
    "gcp": "http://metadata.google.internal",
    "azure": "http://169.254.169.254",
}
# api.country.is (lineofflight/country, formerly hakanensari/country): free, no key, HTTPS;
# GET / answers {"ip": "<caller's IP>", "country": "<ISO 3166-1 alpha-2>"} from MaxMind
# GeoLite2 / Cloudflare data. A service answering the bare code as text (ipinfo.io/country,
# get.geojs.io/v1/ip/country) works too.
DEFAULT_GEOLOCATION_URL = "https://api.country.is/"

AWS_TOKEN_TTL_S = 60  # the token is used for two GETs right away (IMDSv2 allows 1-21600 s)
AZURE_API_VERSION = "2021-02-01"  # a version listed in the Azure IMDS docs (the docs' sample)
MAX_REQUESTS = 3  # AWS: token + region + instance type; GCP 2; Azure 1
MAX_BODY_BYTES = 64 * 1024

Opener = Callable[["urllib.request.Request", float], bytes]
"""Sends one request with a timeout in seconds and returns the body; raises ``OSError``
(the default openers: :class:`~carbonmonitor.carbon.http.HttpError`; others may raise
``urllib.error.HTTPError`` for a non-2xx status, ``TimeoutError``...), ``http.client
.HTTPException`` or ``ValueError`` on failure. Tests and proxies can pass their own."""

_DMI_FIELDS = ("sys_vendor", "product_name", "bios_vendor", "bios_version", "board_vendor",
               "chassis_vendor", "chassis_asset_tag")
# Azure's fixed chassis asset tag, "MSFT AZURE VM" in decimal ASCII pairs. Microsoft's own
# check (azure-docs automation/troubleshoot/update-agent-issues-linux.md: "If the asset tag is
# different than 7783-...") and cloud-init (sources/helpers/azure.py ChassisAssetTag). A Hyper-V
# VM on a desktop or on-premises server has the Microsoft vendor but not this tag.
AZURE_ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"

_AWS_REGION = re.compile(r"[a-z]+(-[a-z]+)+-\d+")  # us-east-1, us-gov-west-1, eusc-de-east-1
# projects/<number>/zones/<region>-<zone letter>: europe-west1-b, northamerica-northeast1-a
_GCP_ZONE = re.compile(r"projects/[^/\s]+/zones/(([a-z]+(?:-[a-z]+)*\d+)-[a-z0-9]+)")
_AZURE_LOCATION = re.compile(r"[a-z][a-z0-9]*")  # westeurope, eastus2, usgovvirginia
_INSTANCE_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # m5.large, Standard_D2s_v3
_ALPHA2 = re.compile(r"[A-Z]{2}")


@dataclass(frozen=True)
class Detection:
    """What cloud detection found.

    ``provider`` comes from DMI (``None``: DMI names no cloud, nothing was sent); ``region``
    and ``instance_type`` from the provider's metadata endpoint (``None`` when it did not
    answer, with a flag saying why). ``evidence`` names the DMI field that matched;
    ``requests_sent`` counts the HTTP requests made (0 off-cloud).
    """

    provider: str | None
    region: str | None = None
    instance_type: str | None = None
    evidence: str = ""
    flags: tuple[Flag, ...] = ()
    requests_sent: int = 0


class _MetadataError(Exception):
    """One metadata request failed; the message says how (for the flag)."""


def _read_dmi(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace").strip()


def dmi_provider(sysfs_root: Path, read_text: Callable[[Path], str] = _read_dmi) -> str | None:
    """``"aws"``, ``"gcp"`` or ``"azure"`` when local DMI data names that provider, else None.

    Reads ``{sysfs_root}/class/dmi/id/{sys_vendor,product_name,bios_vendor,...}``; missing or
    unreadable files (containers, non-x86 boards) count as empty. Sends nothing.

    Example:
        >>> from pathlib import Path
        >>> dmi_provider(Path("/nonexistent"))  # no DMI tree: no provider
    """
    return _match_dmi(_dmi_values(sysfs_root, read_text))[0]


def _dmi_values(sysfs_root: Path, read_text: Callable[[Path], str]) -> dict[str, str]:
    values = {}
    for field in _DMI_FIELDS:
        try:
            values[field] = read_text(Path(sysfs_root) / "class" / "dmi" / "id" / field)
        except (OSError, ValueError):  # absent, root-only, not text: normal outside a VM
            values[field] = ""
    return values


def _match_dmi(dmi: dict[str, str]) -> tuple[str | None, str]:
    """The provider DMI names and the field that says so."""
    # AWS: Nitro instances (VMs and .metal) report "Amazon EC2" as system, board and chassis
    # vendor (systemd src/basic/virt.c DMI table; AWS "Detect whether a host is an EC2
    # instance"); Xen-based ones (t2, m4...) report BIOS version "4.x.amazon" (chef/ohai
    # lib/ohai/plugins/ec2.rb has_ec2_xen_dmi? / has_ec2_amazon_dmi?).
    for field in ("sys_vendor", "board_vendor", "chassis_vendor"):
        if dmi[field] == "Amazon EC2":
            return "aws", f"DMI {field} {dmi[field]!r}"
    for field in ("bios_vendor", "bios_version"):
        if "amazon" in dmi[field].lower():
            return "aws", f"DMI {field} {dmi[field]!r}"
    # GCP: product name "Google Compute Engine" (Google's "Detect if a VM is running in Compute
    # Engine"; google-auth compute_engine/_metadata.py detect_gce_residency_linux checks that
    # product_name starts with "Google"). Chromebooks also have sys_vendor "Google" but their
    # own product name and a coreboot BIOS, so the vendor counts only with a Google BIOS.
    if dmi["product_name"].startswith("Google"):
        return "gcp", f"DMI product_name {dmi['product_name']!r}"
    if dmi["sys_vendor"] == "Google" and dmi["bios_vendor"] == "Google":
        return "gcp", "DMI sys_vendor and bios_vendor 'Google'"
    # Azure: Microsoft vendor plus the Azure asset tag (see AZURE_ASSET_TAG).
    if dmi["sys_vendor"] == "Microsoft Corporation" and dmi["chassis_asset_tag"] == AZURE_ASSET_TAG:
        return "azure", f"DMI chassis_asset_tag {AZURE_ASSET_TAG!r}"
    return None, ""


@cache
def _network_errors() -> tuple[type[Exception], ...]:
    """What a failed request raises: OSError (HttpError from the default openers; URLError,
    timeouts from others), a broken HTTP answer, or an undecodable body."""
    import http.client

    return (OSError, http.client.HTTPException, ValueError)


def open_direct(request: urllib.request.Request, timeout_s: float) -> bytes:
    """The default metadata opener: no proxy, no redirects, body capped at 64 KiB."""
    # IMDS must be reached directly: Azure's docs say to bypass proxies, and an HTTP_PROXY from
    # the environment would forward link-local requests to a proxy that cannot reach them.
    # A redirect would send the headers (the IMDSv2 token) elsewhere: it is an error.
    return _send(request, timeout_s, env_proxies=False)


def open_with_env_proxies(request: urllib.request.Request, timeout_s: float) -> bytes:
    """The default geolocation opener: honours HTTPS_PROXY; no redirects, body capped."""
    return _send(request, timeout_s, env_proxies=True)


def _send(sent: urllib.request.Request, timeout_s: float, *, env_proxies: bool) -> bytes:
    from carbonmonitor.carbon.http import request

    data = sent.data if isinstance(sent.data, bytes) else None
    return request(sent.get_method(), sent.full_url, headers=dict(sent.header_items()),
                   data=data, timeout_s=timeout_s, max_bytes=MAX_BODY_BYTES,
                   env_proxies=env_proxies).body


class _Session:
    """Requests to one provider's endpoint under one overall deadline."""

    def __init__(self, base: str, timeout_s: float, opener: Opener,
                 clock: Callable[[], float]) -> None:
        self.base = base.rstrip("/")
        self.timeout_s = timeout_s
        self.opener = opener
        self.clock = clock
        # A request may overrun its timeout (the default openers stop within about twice it,
        # another opener may not): the overall deadline stops further requests after it.
        self.deadline = clock() + MAX_REQUESTS * timeout_s
        self.sent = 0

    def text(self, method: str, path: str, headers: dict[str, str]) -> str:
        remaining = self.deadline - self.clock()
        if remaining <= 0:
            raise _MetadataError(f"no time left for {method} {path}")
        import urllib.request

        request = urllib.request.Request(self.base + path, method=method, headers=headers)
        self.sent += 1
        try:
            body = self.opener(request, min(self.timeout_s, remaining))
            return body.decode("utf-8").strip()
        except _network_errors() as err:
            raise _MetadataError(f"{method} {path}: {_describe(err)}") from err

    def optional(self, method: str, path: str, headers: dict[str, str]) -> str | None:
        """Like :meth:`text`, None on failure (for the instance type, once the region is in)."""
        try:
            return self.text(method, path, headers)
        except _MetadataError:
            return None


def _describe(err: BaseException) -> str:
    from carbonmonitor.carbon.http import HttpError

    if isinstance(err, HttpError):
        return err.detail
    code = getattr(err, "code", None)  # from an opener of the caller's: urllib's HTTPError
    if isinstance(code, int):
        return f"HTTP {code}"
    reason = getattr(err, "reason", None)  # URLError wraps the socket error
    if isinstance(reason, BaseException):
        err = reason
    if isinstance(err, TimeoutError):
        return "no answer in time"
    return f"{type(err).__name__}: {err}"


def _aws(session: _Session) -> tuple[str, str | None]:
    # IMDSv2 (AWS "Use IMDSv2"): PUT a session token, then GET with it; IMDSv1 is not tried.
    token = session.text("PUT", "/latest/api/token",
                         {"X-aws-ec2-metadata-token-ttl-seconds": str(AWS_TOKEN_TTL_S)})
    if not token or any(c.isspace() for c in token):
        raise _MetadataError("PUT /latest/api/token: empty or malformed token")
    auth = {"X-aws-ec2-metadata-token": token}
    region = session.text("GET", "/latest/meta-data/placement/region", auth)
    if not _AWS_REGION.fullmatch(region):
        raise _MetadataError(f"placement/region answered {region[:40]!r}, not a region id")
    return region, session.optional("GET", "/latest/meta-data/instance-type", auth)


def _gcp(session: _Session) -> tuple[str, str | None]:
    # The metadata server answers 403 without Metadata-Flavor: Google. The zone is
    # "projects/<number>/zones/<region>-<letter>", the machine type ".../machineTypes/<type>".
    flavor = {"Metadata-Flavor": "Google"}
    zone = session.text("GET", "/computeMetadata/v1/instance/zone", flavor)
    match = _GCP_ZONE.fullmatch(zone)
    if match is None:
        raise _MetadataError(f"instance/zone answered {zone[:60]!r}, not projects/N/zones/Z")
    machine = session.optional("GET", "/computeMetadata/v1/instance/machine-type", flavor)
    return match.group(2), machine.rsplit("/", 1)[-1] if machine else None


def _azure(session: _Session) -> tuple[str, str | None]:
    # Azure IMDS rejects requests without "Metadata: true" (400) or with X-Forwarded-For.
    import json

    text = session.text("GET", f"/metadata/instance/compute?api-version={AZURE_API_VERSION}"
                        "&format=json", {"Metadata": "true"})
    try:
        compute = json.loads(text)
    except ValueError as err:
        raise _MetadataError(f"instance/compute answered no JSON ({err})") from err
    location = compute.get("location") if isinstance(compute, dict) else None
    if not isinstance(location, str) or not _AZURE_LOCATION.fullmatch(location):
        raise _MetadataError(f"instance/compute has no usable location ({location!r})")
    size = compute.get("vmSize")
    return location, size if isinstance(size, str) else None


_QUERIES: dict[str, Callable[[_Session], tuple[str, str | None]]] = {
    "aws": _aws, "gcp": _gcp, "azure": _azure}
_HINTS = {
    "aws": " In a container on EC2, IMDSv2 answers need a hop limit of 2: "
           "`aws ec2 modify-instance-metadata-options --instance-id ID "
           "--http-put-response-hop-limit 2`.",
    "gcp": "",
    "azure": "",
}


def detect_cloud(sysfs_root: Path, *, metadata_url: str | None = None, timeout_s: float = 0.5,
                 read_text: Callable[[Path], str] = _read_dmi, opener: Opener = open_direct,
                 clock: Callable[[], float] = time.monotonic) -> Detection:
    """The cloud provider named by local DMI data and, from its metadata endpoint, the region.

    Args:
        sysfs_root: root of sysfs (``/sys``; ``/host/sys`` in a container with the host's).
        metadata_url: base URL replacing the provider's own (a proxy, or a test server).
        timeout_s: limit for each request; all requests together get ``3 * timeout_s``.
        read_text: reads one DMI file (tests inject failures).
        opener: sends one request (see :data:`Opener`).
        clock: monotonic seconds, for the overall deadline.

    Returns:
        A :class:`Detection`; nothing is sent when DMI names no provider. A metadata
        endpoint that times out, refuses, errs or answers nonsense gives ``region=None`` and a
        ``cloud-metadata-unavailable`` flag; this function does not raise for network problems.

    Example:
        >>> from pathlib import Path
        >>> detect_cloud(Path("/nonexistent")).requests_sent
        0
    """
    provider, evidence = _match_dmi(_dmi_values(sysfs_root, read_text))
    if provider is None:
        return Detection(None)
    base = metadata_url or DEFAULT_METADATA_URLS[provider]
    session = _Session(base, timeout_s, opener, clock)
    try:
        region, instance_type = _QUERIES[provider](session)
    except _MetadataError as err:
        return Detection(provider, None, None, evidence, (_unavailable(provider, base, err),),
                         session.sent)
    flags: tuple[Flag, ...] = ()
    if instance_type is None or not _INSTANCE_TYPE.fullmatch(instance_type):
        instance_type = None
        flags = (Flag("cloud-instance-type-unknown",
                      f"{provider} region {region} detected, but the metadata endpoint gave no "
                      "usable instance type: embodied emissions of the instance are left out",
                      "set instance_type= (e.g. instance_type='m5.large')"),)
    return Detection(provider, region, instance_type, evidence, flags, session.sent)


def _unavailable(provider: str, base: str, err: _MetadataError) -> Flag:
    return Flag(
        "cloud-metadata-unavailable",
        f"DMI names {provider}, but its instance-metadata endpoint {base} did not give the "
        f"region ({err}): the location is unknown unless given",
        f"set cloud_region= to this VM's region (CARBONMONITOR_CLOUD_REGION, --cloud-region); "
        f"if the endpoint is reachable only through a proxy, set metadata_url= to that proxy's "
        f"base URL (requests keep the {provider} shape); cloud_detect=false skips the query."
        + _HINTS[provider],
    )


def geolocate_ip(url: str | None = None, *, timeout_s: float = 2.0,
                 opener: Opener = open_with_env_proxies) -> tuple[str | None, Flag]:
    """The ISO 3166-1 alpha-2 country a public service places this machine's IP in.

    Only call this when the user opted in (``ip_geolocation=True``): it sends one HTTPS request,
    and with it this machine's public IP, to a third party. The answer is a guess (VPNs, proxies
    and corporate gateways move it), and the returned flag says so.

    Args:
        url: the service (default :data:`DEFAULT_GEOLOCATION_URL`); it may answer JSON with a
            ``country`` (or ``country_code``/``countryCode``) member, or the bare code as text.
        timeout_s: limit for the request.
        opener: sends the request (see :data:`Opener`).

    Returns:
        ``(code, Flag("location-ip-guess", ...))``, or ``(None, Flag("location-ip-unavailable",
        ...))`` when the service fails or answers something that is not a known country code.
        Does not raise for network problems.
    """
    import urllib.request
    from urllib.parse import urlsplit

    url = url or DEFAULT_GEOLOCATION_URL
    service = urlsplit(url).netloc or url
    request = urllib.request.Request(url, headers={
        "Accept": "application/json, text/plain", "User-Agent": "carbonmonitor"})
    try:
        code = _country_code(opener(request, timeout_s).decode("utf-8").strip())
    except _network_errors() as err:
        return None, Flag(
            "location-ip-unavailable",
            f"IP geolocation via {service} failed ({_describe(err)}): the location is unknown",
            "set country= (or zone=) to where the energy is drawn; geolocation_url= picks "
            "another service")
    return code, Flag(
        "location-ip-guess",
        f"country {code} guessed from this machine's public IP by {service}: an IP guess, "
        "moved by VPNs, proxies and corporate gateways",
        "set country= (or zone=, or cloud_provider= and cloud_region=) to state it")


def _country_code(text: str) -> str:
    """The alpha-2 code in a service's answer; ValueError when there is none."""
    import json

    value: object = text
    if text.startswith("{"):
        answer = json.loads(text)
        value = next((answer[k] for k in ("country", "country_code", "countryCode")
                      if isinstance(answer, dict) and k in answer), None)
    if not isinstance(value, str) or not _ALPHA2.fullmatch(value.upper()):
        raise ValueError(f"the answer holds no two-letter country code: {text[:60]!r}")
    from carbonmonitor.carbon.countries import resolve_country
    from carbonmonitor.errors import ConfigError

    try:
        resolve_country(value.upper())
    except ConfigError as err:  # Cloudflare answers XX (unknown) and T1 (Tor)
        raise ValueError(f"{value!r} is not an ISO 3166 country code") from err
    return value.upper()
