"""Placing each variant's vantage (egress and resolver) with the run's databases, through the
same lookup as ``testbed geo lookup``: country, ASN and organisation per database (the ASN
reads null until a database with ASN data is among them)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping

from testbed.analysis.geo import Consensus, Geo
from testbed.geo.lookup import AddressResult, lookup
from testbed.run.vantage import Vantage


def _best(r: AddressResult | None) -> tuple[str | None, int | None, str | None, str | None]:
    """Country (the first database that places it), ASN and organisation (the first that
    knows them), and the database that gave the country."""
    if r is None or r.special is not None:
        return None, None, None, None
    country = next((p for p in r.placements if p.iso_code), None)
    asn = next((p for p in r.placements if p.asn is not None), None)
    return (country.iso_code if country else None, asn.asn if asn else None,
            asn.organization if asn else None, country.database if country else None)


def place_vantages(vantage: Mapping[str, Vantage], geo: Geo,
                   lab: Collection[str] = ()) -> dict[str, Vantage]:
    """``lab``: the lab map's addresses (documentation addresses the map places)."""
    addresses = sorted({a for v in vantage.values() for a in (v.egress, v.resolver) if a})
    found = {r.address: r for r in lookup([a for a in addresses if a not in lab], geo)}
    for a in addresses:
        if a in lab:
            placements = tuple(geo.place_all(a))
            found[a] = AddressResult(a, None, placements, Consensus.of(placements))
    out = {}
    for variant, v in vantage.items():
        country, asn, org, db = _best(found.get(v.egress or ""))
        r_country, r_asn, _, _ = _best(found.get(v.resolver or ""))
        out[variant] = dataclasses.replace(v, country=country, asn=asn, organization=org,
                                           database=db, resolver_country=r_country,
                                           resolver_asn=r_asn)
    return out
