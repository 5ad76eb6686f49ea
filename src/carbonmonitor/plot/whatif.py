"""What if the same energy had been drawn elsewhere: a run re-accounted at other places.

Places are written ``"country:FR"``, ``"zone:SE-SE3"``, ``"aws:us-east-1"`` (any provider of
:data:`carbonmonitor.carbon.PROVIDERS`), or given as a dict of :func:`~carbonmonitor.reaccount`
arguments (``{"cloud_provider": "gcp", "cloud_region": "europe-north1"}``).

Example:
    >>> import carbonmonitor
    >>> with carbonmonitor.track(backend="fake", country="DE", quiet=True, db="off") as run:
    ...     pass
    >>> [p.label for p in what_if(run.result, ["country:FR"])]
    ['Germany', 'France']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from carbonmonitor.errors import ConfigError
from carbonmonitor.facts import Location
from carbonmonitor.reaccounting import reaccount
from carbonmonitor.records import RunResult

__all__ = ["DEFAULT_PLACES", "Place", "PlaceImpact", "parse_place", "place_of", "what_if"]

Place = str | Mapping[str, str]

DEFAULT_PLACES: tuple[str, ...] = (
    "country:SE", "country:FR", "country:GB", "country:US", "country:DE", "country:CN",
    "country:PL", "country:IN",
)
"""Grids from among the cleanest to among the most carbon-intensive, all with OWID/Ember
life-cycle figures for the same year, so their bars compare on one basis."""

_KEYS = ("country", "zone", "cloud_provider", "cloud_region")


@dataclass(frozen=True)
class PlaceImpact:
    """The run's CO2e had its energy been drawn at ``place`` (``own``: where it was drawn).

    ``co2e_low_g``/``co2e_high_g`` bound it with the energy interval and the factor's hourly
    spread; ``co2e_energy_low_g``/``co2e_energy_high_g`` with the energy interval alone."""

    place: str
    label: str
    co2e_g: float
    co2e_low_g: float
    co2e_high_g: float
    co2e_energy_low_g: float
    co2e_energy_high_g: float
    intensity_g_per_kwh: float
    pue: float
    basis: str
    year: int
    source: str
    own: bool = False


def parse_place(place: Place) -> dict[str, str]:
    """The :func:`~carbonmonitor.reaccount` arguments a place names.

    Raises:
        ConfigError: a place of unknown form, with the forms there are.
    """
    from carbonmonitor.carbon import PROVIDERS

    if isinstance(place, Mapping):
        unknown = sorted(set(place) - set(_KEYS))
        if unknown or not place:
            raise ConfigError(f"a place given as a dict takes the keys {', '.join(_KEYS)}; got "
                              f"{dict(place)!r}. Fix: e.g. {{'country': 'FR'}}")
        return {k: str(v) for k, v in place.items()}
    kind, sep, name = str(place).partition(":")
    kind = kind.strip().lower()
    if sep and name.strip():
        if kind in ("country", "zone"):
            return {kind: name.strip()}
        if kind in PROVIDERS:
            return {"cloud_provider": kind, "cloud_region": name.strip()}
    raise ConfigError(f"cannot read the place {place!r}. Fix: write 'country:FR', "
                      f"'zone:SE-SE3' or '<provider>:<region>' with a provider of "
                      f"{', '.join(PROVIDERS)} (e.g. 'aws:us-east-1')")


def place_of(location: Location) -> str:
    """The place string of a location (``"country:DEU"``), ``"unknown"`` when it is unknown."""
    if location.cloud_region:
        return f"{location.cloud_provider}:{location.cloud_region}"
    if location.zone:
        return f"zone:{location.zone}"
    if location.country_iso3:
        return f"country:{location.country_iso3}"
    return "unknown"


def _label(result: RunResult) -> str:
    where, inten = result.location, result.intensity
    if where.status == "unknown":
        return "world average"
    if where.cloud_region:
        return f"{where.cloud_provider} {where.cloud_region} ({where.country_name})"
    if where.zone:
        return f"{inten.zone_name} ({where.zone})"
    return str(where.country_name)


def what_if(results: RunResult | Sequence[RunResult], places: Sequence[Place] = DEFAULT_PLACES,
            *, basis: str | None = None) -> list[PlaceImpact]:
    """The runs' CO2e at their own place (first, ``own=True``), then at each other place.

    Every place is accounted with the shipped static tables on one ``basis`` (default: the
    first run's), through :func:`~carbonmonitor.reaccount`; a place where only another basis
    exists (Google's operational region figures) keeps that basis, which its entry says. The
    runs' own place uses their result as it stands unless it was accounted hour by hour: then
    it too is re-accounted with the static table, so that all entries compare like with like.
    Places equal to the own place are not repeated. With several runs, figures are summed.

    Raises:
        ConfigError: a place of unknown form, or a name reaccount does not know.
    """
    runs = [results] if isinstance(results, RunResult) else list(results)
    if not runs:
        raise ConfigError("what_if() needs at least one run result")
    basis = basis or runs[0].intensity.basis
    own = [_own(r, basis) for r in runs]
    out = [_impact(place_of(own[0].location), own, own=True)]
    if len({place_of(r.location) for r in own}) > 1:
        out[0] = _impact("as measured", own, own=True, label="several places")
    seen = {(place_of(r.location), r.pue.value) for r in own}
    for place in places:
        args = parse_place(place)
        moved = [_at(r, args, basis) for r in runs]
        key = (place_of(moved[0].location), moved[0].pue.value)
        if key in seen:
            continue
        seen.add(key)
        name = place if isinstance(place, str) else ",".join(f"{k}={v}" for k, v in args.items())
        out.append(_impact(name, moved))
    return out


def _at(result: RunResult, args: Mapping[str, str], basis: str) -> RunResult:
    return reaccount(result, country=args.get("country"), zone=args.get("zone"),
                     cloud_provider=args.get("cloud_provider"),
                     cloud_region=args.get("cloud_region"), basis=basis)


def _own(result: RunResult, basis: str) -> RunResult:
    """The run at its own place on ``basis`` and the static tables."""
    if not result.emissions.time_resolved and result.intensity.basis == basis:
        return result
    where = result.location
    args: dict[str, str] = {}
    if where.cloud_region and where.cloud_provider:
        args = {"cloud_provider": where.cloud_provider, "cloud_region": where.cloud_region}
    elif where.zone:
        args = {"zone": where.zone}
    elif where.country_iso3:
        args = {"country": where.country_iso3}
    return _at(result, args, basis)


def _impact(place: str, runs: Sequence[RunResult], own: bool = False,
            label: str | None = None) -> PlaceImpact:
    first = runs[0]
    return PlaceImpact(
        place, label or _label(first), sum(r.co2e_g for r in runs),
        sum(r.emissions.uncertainty.low for r in runs),
        sum(r.emissions.uncertainty.high for r in runs),
        sum(_energy_share(r, r.energy_uncertainty.low) for r in runs),
        sum(_energy_share(r, r.energy_uncertainty.high) for r in runs), first.intensity.g_per_kwh,
        first.pue.value, first.intensity.basis, first.intensity.year, first.intensity.source,
        own)


def _energy_share(result: RunResult, energy_j: float) -> float:
    """The CO2e of ``energy_j`` at the run's own factor (its CO2e per joule)."""
    return energy_j * result.co2e_g / result.energy_j if result.energy_j > 0 else 0.0
