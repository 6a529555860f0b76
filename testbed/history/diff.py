"""What changed between two runs: per variant, endpoints, countries, organisations and ASNs
that appeared or disappeared, and verdicts whose status changed.

    load_run(path) -> RunView        one run's manifest, endpoints and verdicts (BadInput: exit 2)
                                     read through ``testbed.run``
    diff_runs(a, b) -> RunDiff       a is the older run (the baseline), b the newer one
    format_diff(d) -> str            readable sentences; "no change" for an identical pair
    RunDiff.to_json() -> dict

Special-purpose addresses (multicast, private, ...) count as endpoints but never as countries,
organisations or ASNs: they are classified, not placed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed._errors import TestbedError
from testbed.history.errors import BadInput
from testbed.run import Verdict, store
from testbed.run.files import ENDPOINTS
from testbed.run.manifest import ScenarioRef


@dataclass(frozen=True)
class Endpoint:
    """One address a variant reached, with where it was placed."""

    address: str
    country: str | None = None
    stands_for: str | None = None
    special: str | None = None
    names: tuple[str, ...] = ()
    asn: int | None = None
    organization: str | None = None
    services: tuple[str, ...] = ()  # "tcp/443", ...

    def describe(self) -> str:
        """E.g. ``203.0.113.15 stands for 211.100.40.15`` or ``239.255.255.250 (multicast)``."""
        text = self.address
        if self.stands_for:
            text += f" stands for {self.stands_for}"
        if self.special:
            text += f" ({self.special})"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "country": self.country, "stands_for": self.stands_for,
                "special": self.special, "names": list(self.names), "asn": self.asn,
                "organization": self.organization, "services": list(self.services)}


@dataclass(frozen=True)
class RunView:
    """The parts of a run directory that history compares."""

    path: Path
    run_id: str
    scenario: str
    scenario_sha256: str | None
    status: str
    started: float | None
    finished: float | None
    analysed: bool  # analysis/endpoints.json exists
    endpoints: dict[str, dict[str, Endpoint]]  # variant -> address -> endpoint
    verdicts: dict[str, Verdict]  # id -> verdict

    @property
    def variants(self) -> list[str]:
        return sorted(self.endpoints)

    def countries(self, variant: str) -> set[str]:
        """Countries ``variant`` reached; special-purpose addresses do not count."""
        return {e.country for e in self.endpoints.get(variant, {}).values()
                if e.country and not e.special}

    def organizations(self, variant: str) -> set[str]:
        return {e.organization for e in self.endpoints.get(variant, {}).values()
                if e.organization and not e.special}

    def asns(self, variant: str) -> set[int]:
        return {e.asn for e in self.endpoints.get(variant, {}).values()
                if e.asn is not None and not e.special}

    @property
    def good(self) -> bool:
        """Complete, with verdicts, all of them passing: fit to be a baseline."""
        return self.status == "complete" and bool(self.verdicts) and all(
            v.passed for v in self.verdicts.values())

    def verdict_counts(self) -> dict[str, int]:
        counts = {"pass": 0, "fail": 0, "inconclusive": 0}
        for v in self.verdicts.values():
            s = v.status
            counts[s] = counts.get(s, 0) + 1
        return counts


def load_run(path: Path) -> RunView:
    """Read a run directory; BadInput (exit 2) when ``path`` is not one or a file is damaged."""
    path = Path(path)
    if not path.is_dir():
        raise BadInput(f"{path}: not a run directory (no such folder)")
    try:
        manifest = store.open_manifest(path)
        analysis = store.read_endpoints(path)
        verdicts = store.read_verdicts(path) or []
    except TestbedError as e:  # no manifest, or a damaged file (RunFileError)
        raise BadInput(str(e)) from e
    endpoints: dict[str, dict[str, Endpoint]] = {v: {} for v in manifest.guests}
    services: dict[tuple[str, str], set[str]] = {}
    for ep in analysis.endpoints if analysis else ():
        services.setdefault((ep.variant, ep.address), set()).add(ep.service)
    for (variant, address), svc in services.items():
        assert analysis is not None  # services come from its endpoints
        p = analysis.place(address)
        endpoints.setdefault(variant, {})[address] = Endpoint(
            address=address, country=p.country or None, stands_for=p.stands_for or None,
            special=p.special or None, names=p.names, asn=p.asn,
            organization=p.organization or None, services=tuple(sorted(svc)))
    scen = manifest.scenario or ScenarioRef()
    return RunView(
        path=path,
        run_id=manifest.run_id or path.name,
        scenario=scen.name or path.parent.name,
        scenario_sha256=scen.sha256,
        status=manifest.current_status,
        started=manifest.started,
        finished=manifest.finished,
        analysed=analysis is not None,
        endpoints=endpoints,
        verdicts={v.id: v for v in verdicts},
    )


@dataclass
class VariantDiff:
    """What changed for one variant (``added`` = only in the newer run)."""

    variant: str
    presence: str | None = None  # "added" / "removed": the variant is in one run only
    endpoints_added: list[Endpoint] = field(default_factory=list)
    endpoints_removed: list[Endpoint] = field(default_factory=list)
    countries_added: dict[str, list[Endpoint]] = field(default_factory=dict)  # country -> why
    countries_removed: dict[str, list[Endpoint]] = field(default_factory=dict)
    organizations_added: list[str] = field(default_factory=list)
    organizations_removed: list[str] = field(default_factory=list)
    asns_added: list[int] = field(default_factory=list)
    asns_removed: list[int] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any((self.presence, self.endpoints_added, self.endpoints_removed,
                    self.countries_added, self.countries_removed, self.organizations_added,
                    self.organizations_removed, self.asns_added, self.asns_removed))

    def to_json(self) -> dict[str, Any]:
        def eps(items: list[Endpoint]) -> list[dict[str, Any]]:
            return [e.to_json() for e in items]

        return {
            "variant": self.variant,
            "presence": self.presence,
            "endpoints": {"added": eps(self.endpoints_added),
                          "removed": eps(self.endpoints_removed)},
            "countries": {"added": {c: [e.address for e in v]
                                    for c, v in self.countries_added.items()},
                          "removed": {c: [e.address for e in v]
                                      for c, v in self.countries_removed.items()}},
            "organizations": {"added": self.organizations_added,
                              "removed": self.organizations_removed},
            "asns": {"added": self.asns_added, "removed": self.asns_removed},
        }


@dataclass
class VerdictChange:
    """A verdict whose status differs; a status is None when the run has no such verdict."""

    id: str
    variant: str | None
    before: str | None
    after: str | None
    before_reason: str | None
    after_reason: str | None

    @property
    def regressed(self) -> bool:
        """It passed before and does not pass now."""
        return self.before == "pass" and self.after != "pass"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "variant": self.variant, "before": self.before,
                "after": self.after, "before_reason": self.before_reason,
                "after_reason": self.after_reason, "regressed": self.regressed}


@dataclass
class RunDiff:
    """The difference from run ``a`` (older) to run ``b`` (newer)."""

    a: RunView
    b: RunView
    variants: list[VariantDiff]
    verdicts: list[VerdictChange]
    notes: list[str] = field(default_factory=list)  # context that is not itself a change

    @property
    def status_changed(self) -> bool:
        return self.a.status != self.b.status

    @property
    def changed(self) -> bool:
        return (self.status_changed or bool(self.verdicts)
                or any(v.changed for v in self.variants))

    def variant(self, name: str) -> VariantDiff | None:
        return next((v for v in self.variants if v.variant == name), None)

    def to_json(self) -> dict[str, Any]:
        def side(r: RunView) -> dict[str, Any]:
            return {"path": str(r.path), "run_id": r.run_id, "scenario": r.scenario,
                    "status": r.status, "started": r.started, "analysed": r.analysed}

        return {
            "a": side(self.a), "b": side(self.b), "changed": self.changed,
            "status": {"before": self.a.status, "after": self.b.status},
            "variants": [v.to_json() for v in self.variants if v.changed],
            "verdicts": [v.to_json() for v in self.verdicts],
            "notes": self.notes,
        }


def _diff_variant(variant: str, a: RunView, b: RunView) -> VariantDiff:
    ea, eb = a.endpoints.get(variant, {}), b.endpoints.get(variant, {})
    d = VariantDiff(variant)
    if variant not in a.endpoints:
        d.presence = "added"
    elif variant not in b.endpoints:
        d.presence = "removed"
    d.endpoints_added = [eb[x] for x in sorted(set(eb) - set(ea))]
    d.endpoints_removed = [ea[x] for x in sorted(set(ea) - set(eb))]
    ca, cb = a.countries(variant), b.countries(variant)
    for c in sorted(cb - ca):
        d.countries_added[c] = [e for e in eb.values() if e.country == c and not e.special]
    for c in sorted(ca - cb):
        d.countries_removed[c] = [e for e in ea.values() if e.country == c and not e.special]
    oa, ob = a.organizations(variant), b.organizations(variant)
    d.organizations_added, d.organizations_removed = sorted(ob - oa), sorted(oa - ob)
    na, nb = a.asns(variant), b.asns(variant)
    d.asns_added, d.asns_removed = sorted(nb - na), sorted(na - nb)
    return d


def diff_runs(a: Path, b: Path) -> RunDiff:
    """Compare run ``a`` (the older, e.g. the last good run) with run ``b``."""
    ra, rb = load_run(a), load_run(b)
    return diff_views(ra, rb)


def diff_views(ra: RunView, rb: RunView) -> RunDiff:
    """Like diff_runs, on runs already loaded."""
    variants = [_diff_variant(v, ra, rb) for v in sorted(set(ra.endpoints) | set(rb.endpoints))]
    changes = []
    for vid in sorted(set(ra.verdicts) | set(rb.verdicts)):
        va, vb = ra.verdicts.get(vid), rb.verdicts.get(vid)
        sa, sb = va.status if va else None, vb.status if vb else None
        if sa != sb:
            either = vb or va
            changes.append(VerdictChange(
                id=vid, variant=either.variant if either else None, before=sa, after=sb,
                before_reason=va.reason if va else None, after_reason=vb.reason if vb else None))
    notes = []
    if ra.scenario != rb.scenario:
        notes.append(f"the runs are of different scenarios ({ra.scenario}, {rb.scenario})")
    elif ra.scenario_sha256 and rb.scenario_sha256 and ra.scenario_sha256 != rb.scenario_sha256:
        notes.append(f"the scenario file changed between the runs "
                     f"(sha256 {ra.scenario_sha256[:12]} -> {rb.scenario_sha256[:12]})")
    for r in (ra, rb):
        if not r.analysed:
            notes.append(f"{r.run_id} has no {ENDPOINTS} (status {r.status}): "
                         "its endpoints are unknown, not absent")
    return RunDiff(ra, rb, variants, changes, notes)


def _list(items: list[Endpoint], limit: int = 3) -> str:
    text = ", ".join(e.describe() for e in items[:limit])
    if len(items) > limit:
        text += f", and {len(items) - limit} more"
    return text


def _endpoint_detail(e: Endpoint) -> str:
    bits = [e.special or e.country or "unplaced"]
    if e.stands_for:
        bits.append(f"stands for {e.stands_for}")
    bits.extend(e.names[:2])
    bits.extend(e.services)
    return f"{e.address} ({', '.join(bits)})"


def _org(org: str) -> str:
    return f'"{org}"'


def format_diff(d: RunDiff) -> str:
    """The diff as sentences for the terminal, one change per line."""
    lines = [f"{d.a.scenario}: {d.a.run_id} ({d.a.status}) -> {d.b.run_id} ({d.b.status})"]
    lines.extend(f"note: {n}" for n in d.notes)
    if not d.changed:
        lines.append("no change")
        return "\n".join(lines)
    if d.status_changed:
        lines.append(f"run status: {d.a.status} -> {d.b.status}")
    for v in d.variants:
        if not v.changed:
            continue
        name = v.variant
        if v.presence == "added":
            lines.append(f"{name}: new variant (not in {d.a.run_id}): "
                         f"{len(v.endpoints_added)} endpoint(s)")
        elif v.presence == "removed":
            lines.append(f"{name}: variant gone (not in {d.b.run_id}): had "
                         f"{len(v.endpoints_removed)} endpoint(s)")
        for c, why in v.countries_added.items():
            lines.append(f"{name}: now reaches {c} (new: {_list(why)})")
        for c, why in v.countries_removed.items():
            lines.append(f"{name}: no longer reaches {c} (gone: {_list(why)})")
        for org in v.organizations_added:
            lines.append(f"{name}: now reaches organisation {_org(org)}")
        for org in v.organizations_removed:
            lines.append(f"{name}: no longer reaches organisation {_org(org)}")
        for asn in v.asns_added:
            lines.append(f"{name}: now reaches AS{asn}")
        for asn in v.asns_removed:
            lines.append(f"{name}: no longer reaches AS{asn}")
        for e in v.endpoints_added if v.presence is None else ():
            lines.append(f"{name}: new endpoint {_endpoint_detail(e)}")
        for e in v.endpoints_removed if v.presence is None else ():
            lines.append(f"{name}: endpoint gone {_endpoint_detail(e)}")
    for vc in d.verdicts:
        before, after = vc.before or "absent", vc.after or "absent"
        flag = " (REGRESSION)" if vc.regressed else ""
        lines.append(f"verdict {vc.id}: {before} -> {after}{flag}")
        if vc.before_reason:
            lines.append(f"    was: {vc.before_reason}")
        if vc.after_reason:
            lines.append(f"    now: {vc.after_reason}")
    return "\n".join(lines)
