"""What a real app's profile and scenario may say beyond the seed's: where the app keeps its
own NSS database (``nss_db``, a folder inside the guest's home) and claims on where the run's
canary went (``canary_reaches`` / ``canary_never_reaches``), as `validate` sees them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from testbed.scenario import load_scenario
from tests.scenario.conftest import assert_refused, change, validate

SCENARIO = "skype-2013-lab.yaml"
APP = "apps/refclient.yaml"


@pytest.mark.parametrize("folder", [".mozilla/firefox/testbed", "profile", ".pki/nssdb",
                                    ".thunderbird/x.default-esr"])
def test_an_nss_database_in_the_home_is_taken(folder: str, seed_tree: Path) -> None:
    change(seed_tree / APP, lambda d: d.update(trust="nss", nss_db=folder))
    assert validate(seed_tree / SCENARIO).verdict == "ok"
    assert load_scenario(seed_tree / SCENARIO).clients["regular"].app.nss_db == folder


@pytest.mark.parametrize("folder", ["/etc/pki/nssdb", "../other-guest", "a/../../b", ""])
def test_an_nss_database_outside_the_home_is_refused(folder: str, seed_tree: Path) -> None:
    change(seed_tree / APP, lambda d: d.update(trust="nss", nss_db=folder))
    assert_refused(validate(seed_tree / SCENARIO), "refclient.yaml:", "nss_db")


def test_without_nss_db_the_app_reads_the_usual_database(seed_tree: Path) -> None:
    assert load_scenario(seed_tree / SCENARIO).clients["regular"].app.nss_db is None


def _claim(claim: dict[str, Any]) -> Any:
    def edit(d: Any) -> None:
        d["expectations"].append(claim)
    return edit


@pytest.mark.parametrize("kind", ["canary_reaches", "canary_never_reaches"])
@pytest.mark.parametrize("place", [{"country": "CN"}, {"host": "*.cn.lab.example"},
                                   {"network": "203.0.113.0/24"}])
def test_a_canary_claim_is_taken(kind: str, place: dict[str, Any], seed_tree: Path) -> None:
    change(seed_tree / SCENARIO, _claim({"variant": "regular", kind: place}))
    assert validate(seed_tree / SCENARIO).verdict == "ok"
    (claim,) = [e for e in load_scenario(seed_tree / SCENARIO).expectations if e.kind == kind]
    assert claim.variant == "regular" and claim.place == place
    assert claim.id.startswith(f"regular-{kind}-")


@pytest.mark.parametrize(("claim", "words"), [
    ({"canary_reaches": {"country": "CN"}}, ("variant",)),
    ({"variant": "nobody", "canary_reaches": {"country": "CN"}}, ("unknown variant",)),
    ({"variant": "regular", "canary_never_reaches": {"network": "no-net"}}, ("not a network",)),
    ({"variant": "regular", "canary_reaches": {"country": "CN"},
      "reaches": {"country": "CN"}}, ("expectations[",)),
])
def test_a_wrong_canary_claim_is_refused(claim: dict[str, Any], words: tuple[str, ...],
                                         seed_tree: Path) -> None:
    change(seed_tree / SCENARIO, _claim(claim))
    assert_refused(validate(seed_tree / SCENARIO), *words)
