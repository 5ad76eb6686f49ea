"""Live intensity providers behind one protocol (:class:`carbonmonitor.carbon.live.Provider`).

=================  ===========================  ===================  ==================
name               class                        basis                needs
=================  ===========================  ===================  ==================
``electricitymaps``  :class:`ElectricityMaps`   lifecycle or direct  API token
``watttime``       :class:`WattTime`            marginal             username, password
``ukci``           :class:`UKCarbonIntensity`   operational          nothing (GB only)
=================  ===========================  ===================  ==================

Each answers hourly (UK: half-hourly) bins, keeps answers in a :class:`DiskCache`, waits at most
``timeout_s`` per request, pauses after a failure (:class:`Backoff`), and raises only
:class:`~carbonmonitor.carbon.live.ProviderError`, which
:func:`~carbonmonitor.carbon.live.live_emissions` turns into a recorded fallback.
"""

from __future__ import annotations

from pathlib import Path

from carbonmonitor.carbon.live import Provider
from carbonmonitor.carbon.providers._base import DEFAULT_TIMEOUT_S
from carbonmonitor.carbon.providers._cache import DiskCache
from carbonmonitor.carbon.providers._http import DEFAULT_BACKOFF, Backoff
from carbonmonitor.carbon.providers.electricitymaps import BASE_URL as EM_URL
from carbonmonitor.carbon.providers.electricitymaps import ElectricityMaps
from carbonmonitor.carbon.providers.ukci import BASE_URL as UK_URL
from carbonmonitor.carbon.providers.ukci import UKCarbonIntensity
from carbonmonitor.carbon.providers.watttime import BASE_URL as WT_URL
from carbonmonitor.carbon.providers.watttime import WattTime
from carbonmonitor.clock import Clock
from carbonmonitor.errors import ConfigError, did_you_mean

__all__ = [
    "DEFAULT_BACKOFF",
    "PROVIDERS",
    "Backoff",
    "DiskCache",
    "ElectricityMaps",
    "UKCarbonIntensity",
    "WattTime",
    "default_cache_dir",
    "make_provider",
]

PROVIDERS = ("electricitymaps", "watttime", "ukci")


def default_cache_dir() -> Path:
    """``<user cache dir>/carbonmonitor/intensity`` (platformdirs)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("carbonmonitor", appauthor=False)) / "intensity"


def make_provider(
    name: str, *, basis: str | None = None, token: str | None = None,
    username: str | None = None, password: str | None = None, url: str | None = None,
    region: str | None = None, cache_dir: Path | str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S, backoff: Backoff | None = None,
    clock: Clock | None = None,
) -> Provider:
    """The provider the options name, checked before a run starts. Sends nothing.

    Args:
        name: ``electricitymaps``, ``watttime`` or ``ukci``.
        basis: Electricity Maps ``lifecycle`` (default) or ``direct``; the others have one
            basis each and refuse another.
        token: Electricity Maps token. username, password: WattTime account.
        url: the API root instead of the provider's (a proxy, or a test server).
        region: WattTime region (``CAISO_NORTH``) or UK region id (``13``).
        cache_dir: where answers are kept; None: :func:`default_cache_dir`.

    Raises:
        ConfigError: unknown name (with the closest one), missing credentials, a basis the
            provider does not offer, a bad region.
    """
    key = name.strip().lower() if isinstance(name, str) else ""
    if key not in PROVIDERS:
        raise ConfigError(f"intensity_provider {name!r} is not known; use one of "
                          f"{', '.join(PROVIDERS)}.{did_you_mean(str(name), PROVIDERS)}")
    cache = DiskCache(default_cache_dir() if cache_dir is None else cache_dir)
    if key == "electricitymaps":
        return ElectricityMaps(token or "", base_url=url or EM_URL, basis=basis or "lifecycle",
                               timeout_s=timeout_s, cache=cache, backoff=backoff, clock=clock)
    _single_basis(key, basis, "marginal" if key == "watttime" else "operational")
    if key == "watttime":
        if not region:
            raise ConfigError("intensity_provider='watttime' needs intensity_region=, a "
                              "WattTime region such as CAISO_NORTH (WattTime regions are not "
                              "grid zones; its /v3/region-from-loc endpoint finds yours)")
        return WattTime(username or "", password or "", base_url=url or WT_URL, region=region,
                        timeout_s=timeout_s, cache=cache, backoff=backoff, clock=clock)
    return UKCarbonIntensity(base_url=url or UK_URL, region_id=_region_id(region),
                             timeout_s=timeout_s, cache=cache, backoff=backoff, clock=clock)


def _single_basis(key: str, basis: str | None, offered: str) -> None:
    if basis is not None and basis != offered:
        raise ConfigError(f"intensity_provider {key!r} gives {offered} factors only, not "
                          f"{basis!r}. Fix: drop intensity_basis or use "
                          "intensity_provider='electricitymaps'")


def _region_id(region: str | None) -> int | None:
    if region is None or not str(region).strip():
        return None
    try:
        return int(str(region).strip())
    except ValueError:
        raise ConfigError(f"intensity_region for ukci must be a UK region id 1-17 (13 is "
                          f"London); got {region!r}") from None
