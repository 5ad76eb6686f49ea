"""Embodied emissions: the run's amortised share of the hardware's manufacturing footprint.

Figures come from ``embodied/`` (data README section 5): Cloud Carbon Footprint's per-instance
host totals for AWS, Azure and GCP, the Teads EC2 figures for AWS types CCF lacks, Boavizta's
manufacturer footprints for named servers, or the user's own numbers. Every figure is for the
whole host (or device); a cloud instance gets the share ``instance vCPUs / host vCPUs`` of it,
as CCF does. The run's part is ``kgCO2e x duration / lifetime x host share x run share``,
reported apart from operational emissions (docs/embodied.md).

Example:
    >>> p4d = embodied_for_instance("aws", "p4d.24xlarge")
    >>> p4d.kg_co2e, p4d.lifetime_years, p4d.host_share
    (4676.79, 4.0, 1.0)
    >>> round(amortised([p4d], 3600).grams, 1)
    133.5
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache

from carbonmonitor.carbon.regions import validate_provider
from carbonmonitor.data import read_table
from carbonmonitor.errors import ConfigError, DataError, closest, did_you_mean
from carbonmonitor.facts import Flag

__all__ = [
    "SECONDS_PER_YEAR",
    "SYNTAX",
    "Embodied",
    "EmbodiedPart",
    "EmbodiedSource",
    "amortised",
    "embodied_for_instance",
    "embodied_for_server",
    "parse_embodied",
]

SECONDS_PER_YEAR = 365 * 24 * 3600
"""A lifetime year: 8,760 h, as in CCF's 4-year lifespan of 35,040 h."""

SOURCES = "embodied/embodied_sources.csv"
VCPUS = "embodied/ccf_instance_vcpus.csv"
BOAVIZTA = "embodied/boavizta_manufacturer_pcf_datacenter.csv"
_CCF_TABLE = {"aws": "embodied/ccf_embodied_aws.csv", "azure": "embodied/ccf_embodied_azure.csv",
              "gcp": "embodied/ccf_embodied_gcp.csv"}
_GCP_MEAN = "embodied/ccf_embodied_gcp_mean.csv"

SYNTAX = (
    "NAME=[COUNTx]AMOUNT{kg|t}/YEARSy[@SHARE], items separated by commas, e.g. "
    "'server=1200kg/4y,gpu=8x150kg/5y' or 'server=1.2t/4y@0.25'; or a mapping "
    "{'server': {'kg': 1200, 'years': 4}, 'gpu': {'kg': 150, 'years': 5, 'count': 8}}"
)
_OWN_FIGURE = "give the hardware's figure yourself, e.g. embodied='host=1200kg/4y@0.25'"
_EXAMPLE = {"aws": "p4d.24xlarge", "azure": "Standard_ND40rs_v2", "gcp": "a2-highgpu-8g"}
_RULE = "kgCO2e x 1000 x duration_s / (lifetime_years x 31,536,000 s) x host share x run share"


@dataclass(frozen=True)
class EmbodiedSource:
    """One piece of hardware's manufacturing footprint and how much of it a run may claim.

    ``kg_co2e`` is for one whole host or device (times ``count``); ``host_share`` is the part
    of it the instance or user holds (None: unknown, amortised as the whole host and flagged).
    ``kg_low``/``kg_high`` bound ``kg_co2e`` where the source gives a spread.
    """

    name: str
    kg_co2e: float
    lifetime_years: float
    host_share: float | None
    share_basis: str
    source: str
    licence: str
    year: int | None = None
    table: str | None = None
    count: int = 1
    kg_low: float | None = None
    kg_high: float | None = None
    flags: tuple[Flag, ...] = ()


@dataclass(frozen=True)
class EmbodiedPart:
    """One source's amortised grams for a run, with the numbers that produced them."""

    name: str
    grams: float
    grams_low: float
    grams_high: float
    kg_co2e: float
    count: int
    lifetime_years: float
    share: float
    share_basis: str
    source: str

    def describe(self) -> str:
        """``aws m5.large: 1610.79 kg / 4 y x 0.02083 (2 of 96 vCPUs ...) = 0.9577 g (Cloud
        Carbon Footprint, ...)`` for an hour: one line per part, for summaries and stored runs."""
        count = f"{self.count} x " if self.count != 1 else ""
        return (f"{self.name}: {count}{self.kg_co2e:g} kg / {self.lifetime_years:g} y x "
                f"{self.share:.4g} ({self.share_basis}) = {self.grams:.4g} g ({self.source})")


@dataclass(frozen=True)
class Embodied:
    """A run's embodied emissions, kept apart from its operational emissions.

    ``grams_low``/``grams_high`` are None unless a source gives a spread (then parts without
    one count at their single value in both bounds).
    """

    grams: float
    grams_low: float | None
    grams_high: float | None
    parts: tuple[EmbodiedPart, ...]
    duration_s: float
    share: float
    rule: str = _RULE
    flags: tuple[Flag, ...] = ()

    def describe(self) -> str:
        """``embodied 133.5 g CO2e (aws p4d.24xlarge), reported apart from operational``."""
        names = ", ".join(p.name for p in self.parts) or "no hardware given"
        span = ("" if self.grams_low is None or self.grams_high is None
                else f" [{self.grams_low:.4g}-{self.grams_high:.4g}]")
        return (f"embodied {self.grams:.4g} g CO2e{span} ({names}), "
                "reported apart from operational")


def amortised(
    sources: Iterable[EmbodiedSource], duration_s: float, *, share: float = 1.0
) -> Embodied:
    """The run's share of its hardware's embodied emissions.

    Args:
        sources: from :func:`embodied_for_instance`, :func:`embodied_for_server` or
            :func:`parse_embodied`.
        duration_s: how long the run held the hardware.
        share: the run's part of what the sources describe (e.g. 0.5 for one of two jobs
            sharing the instance); 0 < share <= 1.

    Example:
        >>> server = parse_embodied("server=1200kg/4y")
        >>> amortised(server, 86400).grams  # 1200 kg x 1 day / 1460 days
        821.917808219178

    Raises:
        ConfigError: a negative or non-finite duration, or a share outside (0, 1].
    """
    if not (math.isfinite(duration_s) and duration_s >= 0):
        raise ConfigError(f"duration_s must be a finite number >= 0; got {duration_s!r}")
    _check_share(share, "amortised()")
    given = list(sources)
    parts: list[EmbodiedPart] = []
    flags: list[Flag] = []
    for src in given:
        held = 1.0 if src.host_share is None else src.host_share
        per_kg = 1000 * duration_s / (src.lifetime_years * SECONDS_PER_YEAR) * held * share
        per_kg *= src.count
        low = src.kg_low if src.kg_low is not None else src.kg_co2e
        high = src.kg_high if src.kg_high is not None else src.kg_co2e
        parts.append(EmbodiedPart(src.name, src.kg_co2e * per_kg, low * per_kg, high * per_kg,
                                  src.kg_co2e, src.count, src.lifetime_years, held * share,
                                  src.share_basis, src.source))
        flags.extend(f for f in src.flags if f not in flags)
    spread = any(s.kg_low is not None or s.kg_high is not None for s in given)
    return Embodied(
        grams=sum(p.grams for p in parts),
        grams_low=sum(p.grams_low for p in parts) if spread else None,
        grams_high=sum(p.grams_high for p in parts) if spread else None,
        parts=tuple(parts), duration_s=float(duration_s), share=share, flags=tuple(flags))


# --- cloud instances ---------------------------------------------------------------------


def embodied_for_instance(provider: str, instance_type: str) -> EmbodiedSource:
    """The embodied footprint of a cloud instance type's host and the instance's share of it.

    Args:
        provider: ``"aws"``, ``"azure"`` or ``"gcp"``.
        instance_type: as the provider names it: ``"p4d.24xlarge"``; ``"Standard_D2s_v3"`` or
            ``"D2s v3"``; ``"n1-standard-8"`` or a metadata path ending in it.

    Example:
        >>> src = embodied_for_instance("gcp", "n1-standard-8")
        >>> src.kg_co2e, src.share_basis
        (1677.48, '8 of 96 vCPUs (largest n1 size in the CCF instance list)')

    Raises:
        ConfigError: unknown provider or instance type (with the closest names), or a type
            the tables list without an embodied figure.
    """
    key = validate_provider(provider)
    wanted = _normalise(key, instance_type)
    index = _ccf_index(key)
    if wanted in index:
        name, totals = index[wanted]
        return _ccf_source(key, name, totals)
    if key == "aws":
        known = _vcpu_index("aws").get(wanted)
        if known is not None:
            return _teads_source(known)
    raise ConfigError(_unknown_instance(key, instance_type, wanted))


def _normalise(provider: str, instance_type: str) -> str:
    """Provider spellings to the tables' keys: Azure ``Standard_NC24ads_A100_v4`` ->
    ``nc24ads a100 v4``; a GCP metadata path ``projects/1/machineTypes/n1-standard-8`` ->
    ``n1-standard-8``."""
    text = instance_type.strip().lower()
    if provider == "gcp":
        text = text.rsplit("/", 1)[-1]
    if provider == "azure":
        text = re.sub(r"^(standard|basic)_", "", text).replace("_", " ")
    return " ".join(text.split())


@cache
def _ccf_index(provider: str) -> dict[str, tuple[str, tuple[float, ...]]]:
    """Normalised type -> (type as in the table, its totals: one per microarchitecture row)."""
    found: dict[str, tuple[str, list[float]]] = {}
    for row in read_table(_CCF_TABLE[provider]):
        name = row["type"]
        found.setdefault(_normalise(provider, name), (name, []))[1].append(float(row["total"]))
    return {k: (name, tuple(totals)) for k, (name, totals) in found.items()}


@cache
def _vcpu_index(provider: str) -> dict[str, Mapping[str, str]]:
    return {_normalise(provider, r["instance_type"]): r for r in read_table(VCPUS)
            if r["provider"] == provider}


@cache
def _source_row(key: str) -> Mapping[str, str]:
    for row in read_table(SOURCES):
        if row["key"] == key:
            return row
    raise DataError(f"{SOURCES} lacks the row {key!r}; reinstall carbonmonitor and report "
                    "this as a packaging bug")


def _ccf_source(provider: str, name: str, totals: tuple[float, ...]) -> EmbodiedSource:
    meta = _source_row(f"ccf-{provider}")
    kg, low, high = totals[0], None, None
    if min(totals) != max(totals):
        # types that may land on several CPU generations (GCP): the mean, min..max as range
        kg = (next(float(r["total_mean"]) for r in read_table(_GCP_MEAN) if r["type"] == name)
              if provider == "gcp" else sum(totals) / len(totals))
        low, high = min(totals), max(totals)
    share, basis, flags = _host_share(provider, name)
    return EmbodiedSource(
        name=f"{provider} {name}", kg_co2e=kg, lifetime_years=float(meta["lifetime_years"]),
        host_share=share, share_basis=basis, source=meta["source"], licence=meta["licence"],
        year=int(meta["year"]), table=meta["table"], kg_low=low, kg_high=high, flags=flags)


def _teads_source(row: Mapping[str, str]) -> EmbodiedSource:
    name = row["instance_type"]
    if not row["platform_embodied_tco2e"]:
        raise ConfigError(
            f"carbonmonitor knows aws {name} ({row['vcpus']} vCPUs) but has no embodied "
            f"figure for it. Fix: {_OWN_FIGURE} (the instance's share of the host after @).")
    meta = _source_row("teads-aws")
    share, basis, flags = _host_share("aws", name)
    note = Flag("embodied-secondary-source",
                f"aws {name} is not in CCF's embodied table; its host figure comes from the "
                "Teads EC2 dataset, another method that counts GPUs lower (docs/embodied.md)",
                "give the host's figure with embodied= if you have a better one")
    return EmbodiedSource(
        name=f"aws {name}", kg_co2e=float(row["platform_embodied_tco2e"]) * 1000,
        lifetime_years=float(meta["lifetime_years"]), host_share=share, share_basis=basis,
        source=meta["source"], licence=meta["licence"], year=int(meta["year"]),
        table=meta["table"], flags=(*flags, note))


_AWS_SERVICE = re.compile(r"^(?:cache|db|ml)\.|\.(?:elasticsearch|search)$")


def _host_share(provider: str, name: str) -> tuple[float | None, str, tuple[Flag, ...]]:
    """The instance's share of its host: vCPUs over the host's, as CCF allocates it."""
    base = _AWS_SERVICE.sub("", name) if provider == "aws" else name
    row = _vcpu_index(provider).get(_normalise(provider, base))
    if row is not None:
        vcpus = float(row["vcpus"])
        if provider == "azure":
            host, where = float(row["platform_vcpus"]), "platform vCPUs in the CCF table"
        else:
            group = base.split("." if provider == "aws" else "-")[0]
            host = _largest_vcpus(provider, group)
            where = f"largest {group} size in the CCF instance list"
        basis = f"{vcpus:g} of {host:g} vCPUs ({where})"
        if vcpus > host:  # upstream slips such as Azure M416ms v2 (416 on a 208-vCPU host)
            return 1.0, f"{basis}; capped at the whole host", ()
        return vcpus / host, basis, ()
    if provider == "aws":
        ratio = _aws_size_ratio(base)
        if ratio is not None:
            return ratio
    return None, "unknown", (Flag(
        "embodied-share-unknown",
        f"{provider} {name}: no vCPU count in the shipped tables, so the whole host's "
        "embodied emissions are counted (an upper bound)",
        "give embodied='host=KGkg/4y@SHARE' with the instance's share of the host"),)


@cache
def _largest_vcpus(provider: str, group: str) -> float:
    """AWS family (``m5``) or GCP series (``n1``): its largest listed size's vCPUs."""
    sep = "." if provider == "aws" else "-"
    return max(float(r["vcpus"]) for r in _vcpu_index(provider).values()
               if r["instance_type"].split(sep)[0] == group)


def _aws_size_ratio(name: str) -> tuple[float, str, tuple[Flag, ...]] | None:
    """For older AWS types without a vCPU count (p3, p2, g3, ...): AWS size names scale with
    vCPUs (large 2, xlarge 4, 8xlarge 32), so the size over the family's largest size in CCF's
    embodied table gives the same ratio."""
    family, _, size = name.partition(".")
    members = {n.partition(".")[2]: _size_units(n.partition(".")[2])
               for n, _ in _ccf_index("aws").values() if n.partition(".")[0] == family}
    units = _size_units(size)
    if units is None or None in members.values():
        return None
    largest = max(members, key=lambda m: members[m] or 0.0)
    return units / (members[largest] or 1.0), (
        f"{size} of {family}.{largest} by AWS size names (no vCPU count in the shipped "
        "instance list)"), ()


def _size_units(size: str) -> float | None:
    match = re.fullmatch(r"(\d*)xlarge", size)
    if match:
        return float(match.group(1) or 1)
    return 0.5 if size == "large" else None


def _unknown_instance(provider: str, given: str, wanted: str) -> str:
    names = {k: n for k, (n, _) in _ccf_index(provider).items()}
    if provider == "aws":
        names.update({k: r["instance_type"] for k, r in _vcpu_index("aws").items()})
    match = closest(wanted, names)
    hint = f" Did you mean {names[match]!r}?" if match else ""
    return (f"unknown {provider} instance type {given!r} for embodied emissions.{hint} Fix: use "
            f"the provider's type name (e.g. {_EXAMPLE[provider]!r}), or {_OWN_FIGURE}.")


# --- named servers (Boavizta) ------------------------------------------------------------


def embodied_for_server(name: str) -> EmbodiedSource:
    """A server model's manufacturing footprint from its maker's product carbon footprint.

    Args:
        name: the model, with or without its maker: ``"Dell PowerEdge R740"``,
            ``"PowerEdge R740"``, ``"HPE ProLiant DL380 Gen10"``.

    Example:
        >>> r740 = embodied_for_server("Dell PowerEdge R740")
        >>> r740.kg_co2e, r740.lifetime_years, r740.year
        (1313.3, 4.0, 2019)

    Raises:
        ConfigError: an unknown model (with the closest name), or one whose footprint gives
            no manufacturing share.
    """
    index = _server_index()
    key = " ".join(name.lower().split())
    row = index.get(key)
    if row is None:
        match = closest(key, index)
        hint = f" Did you mean {_label(index[match])!r}?" if match else ""
        raise ConfigError(
            f"unknown server model {name!r} for embodied emissions.{hint} Fix: use a model "
            f"from {BOAVIZTA} (e.g. 'Dell PowerEdge R740'), or {_OWN_FIGURE}.")
    label = _label(row)
    if not row["gwp_manufacturing_kgco2e"]:
        raise ConfigError(
            f"the footprint of {label} gives no manufacturing share, so its embodied emissions "
            f"are unknown. Fix: {_OWN_FIGURE}.")
    meta = _source_row("boavizta")
    year = re.findall(r"\d{4}", row["report_date"])
    return EmbodiedSource(
        name=label, kg_co2e=float(row["gwp_manufacturing_kgco2e"]),
        lifetime_years=float(row["lifetime"]), host_share=1.0, share_basis="whole server",
        source=f"{meta['source']}: {label} ({row['sources']})", licence=meta["licence"],
        year=int(year[-1]) if year else None, table=meta["table"],
        flags=(Flag("embodied-screening",
                    f"{label}: a manufacturer's screening estimate (Boavizta advises against "
                    "using such figures for accurate assessments)",
                    "give a measured life-cycle figure with embodied= if you have one"),))


def _label(row: Mapping[str, str]) -> str:
    # HP's model names carry a footnote marker in the upstream file ("... Gen10 server4")
    name = row["name"].strip()
    if row["manufacturer"] == "HP":
        name = re.sub(r"(?<=[a-z])4$", "", name)
    return f"{row['manufacturer']} {name}"


@cache
def _server_index() -> dict[str, Mapping[str, str]]:
    """Lower-cased model names, with and without the maker (HP also as HPE, and without
    HP's trailing word "server"), to their rows."""
    index: dict[str, Mapping[str, str]] = {}
    for row in read_table(BOAVIZTA):
        maker, _, model = _label(row).partition(" ")
        models = {model, re.sub(r" server$", "", model)}
        makers = {maker, "HPE"} if maker == "HP" else {maker}
        for spelled in models | {f"{m} {x}" for m in makers for x in models}:
            index.setdefault(" ".join(spelled.lower().split()), row)
    return index


# --- the user's own figures --------------------------------------------------------------


def parse_embodied(spec: str | Mapping[str, object]) -> list[EmbodiedSource]:
    """The user's hardware figures, from text or a mapping (see :data:`SYNTAX`).

    Each item names a piece of hardware, its manufacturing footprint (``kg`` or ``t`` CO2e,
    optionally times a count) and its lifetime in years; ``@SHARE`` (0-1, or a percentage)
    is the part of it the run's machine holds. An empty string gives no sources.

    Example:
        >>> [(s.name, s.kg_co2e, s.count, s.lifetime_years) for s in
        ...  parse_embodied("server=1200kg/4y, gpu=8x150kg/5y")]
        [('server', 1200.0, 1, 4.0), ('gpu', 150.0, 8, 5.0)]

    Raises:
        ConfigError: what is wrong, the item it is in, and the syntax.
    """
    if isinstance(spec, str):
        items = [i for i in re.split(r"[,;]", spec) if i.strip()]
        pairs = [_split_item(i) for i in items]
        sources = [_from_text(name, value) for name, value in pairs]
    elif isinstance(spec, Mapping):
        sources = [_from_mapping(name, value) for name, value in spec.items()]
    else:
        raise ConfigError(f"embodied must be text or a mapping; got {type(spec).__name__}. "
                          f"Syntax: {SYNTAX}")
    names = [s.name for s in sources]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"embodied names {', '.join(map(repr, dupes))} twice or more; name "
                          f"each piece of hardware once (COUNTx for several). Syntax: {SYNTAX}")
    return sources


def _split_item(item: str) -> tuple[str, str]:
    name, eq, value = item.partition("=")
    if not eq:
        raise ConfigError(f"embodied item {item.strip()!r} lacks '=': write NAME=AMOUNT/YEARS. "
                          f"Syntax: {SYNTAX}")
    return name.strip(), value.strip()


_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"


def _from_text(name: str, value: str) -> EmbodiedSource:
    where = f"embodied item {name}={value!r}"
    body, at, share_text = value.partition("@")
    amount, slash, life = body.partition("/")
    if not slash:
        raise ConfigError(f"{where} lacks a lifetime: add '/YEARSy', e.g. '{body.strip()}/4y'. "
                          f"Syntax: {SYNTAX}")
    found = re.fullmatch(rf"\s*(?:(\d+)\s*[x×*]\s*)?{_NUMBER}\s*(kg|t)(?:co2e?)?\s*",
                         amount, re.IGNORECASE)
    if not found:
        raise ConfigError(f"{where}: {amount.strip()!r} is not an amount such as '1200kg', "
                          f"'1.2t' or '8x150kg' (kgCO2e or tonnes). Syntax: {SYNTAX}")
    years = re.fullmatch(rf"\s*{_NUMBER}\s*(?:y|yr|yrs|year|years)\s*", life, re.IGNORECASE)
    if not years:
        raise ConfigError(f"{where}: lifetime {life.strip()!r} is not years such as '4y'. "
                          f"Syntax: {SYNTAX}")
    share = 1.0
    if at:
        parsed = re.fullmatch(rf"\s*{_NUMBER}\s*(%?)\s*", share_text)
        if not parsed:
            raise ConfigError(f"{where}: share {share_text.strip()!r} is not a fraction such as "
                              f"'0.25' or '25%'. Syntax: {SYNTAX}")
        share = float(parsed.group(1)) / (100 if parsed.group(2) else 1)
    kg = float(found.group(2)) * (1000 if found.group(3).lower() == "t" else 1)
    return _user_source(name, kg, float(years.group(1)), int(found.group(1) or 1), share, where)


_MAPPING_KEYS = ("kg", "years", "count", "share")


def _from_mapping(name: object, value: object) -> EmbodiedSource:
    where = f"embodied item {name!r}"
    if not isinstance(name, str):
        raise ConfigError(f"{where}: names must be text. Syntax: {SYNTAX}")
    if isinstance(value, str):
        return _from_text(name, value)
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be text such as '1200kg/4y' or a mapping with "
                          f"{', '.join(_MAPPING_KEYS)}; got {value!r}. Syntax: {SYNTAX}")
    for k in value:
        if k not in _MAPPING_KEYS:
            raise ConfigError(f"{where}: unknown key {k!r}.{did_you_mean(str(k), _MAPPING_KEYS)} "
                              f"Use {', '.join(_MAPPING_KEYS)}. Syntax: {SYNTAX}")
    for k in ("kg", "years"):
        if k not in value:
            raise ConfigError(f"{where} lacks {k!r}. Syntax: {SYNTAX}")
    kg, years = _number(value["kg"], where, "kg"), _number(value["years"], where, "years")
    count = value.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int):
        raise ConfigError(f"{where}: count must be a whole number >= 1; got {count!r}. "
                          f"Syntax: {SYNTAX}")
    share = _number(value.get("share", 1.0), where, "share")
    return _user_source(name, kg, years, count, share, where)


def _number(value: object, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: {key} must be a number; got {value!r}. Syntax: {SYNTAX}")
    return float(value)


def _user_source(name: str, kg: float, years: float, count: int, share: float,
                 where: str) -> EmbodiedSource:
    problem = (
        f"name {name!r} must start with a letter and hold only letters, digits, '_', '.' or '-'"
        if not re.fullmatch(r"[A-Za-z][\w.\-]*", name) else
        f"the footprint must be >= 0 kgCO2e; got {kg:g}"
        if not (math.isfinite(kg) and kg >= 0) else
        f"the lifetime must be > 0 years; got {years:g}"
        if not (math.isfinite(years) and years > 0) else
        f"count must be a whole number >= 1; got {count}" if count < 1 else
        _share_problem(share))
    if problem:
        raise ConfigError(f"{where}: {problem}. Syntax: {SYNTAX}")
    basis = "given by user" + (f" (@{share:g})" if share != 1.0 else "")
    return EmbodiedSource(name=name, kg_co2e=kg, lifetime_years=years, host_share=share,
                          share_basis=basis, source="given by user", licence="", count=count)


def _check_share(share: float, what: str) -> None:
    problem = _share_problem(share)
    if problem:
        raise ConfigError(f"{what}: {problem}")


def _share_problem(share: object) -> str:
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not (
            math.isfinite(share) and 0 < share <= 1):
        return (f"share must be a fraction in (0, 1], e.g. 0.25 for a quarter of the hardware; "
                f"got {share!r}")
    return ""
