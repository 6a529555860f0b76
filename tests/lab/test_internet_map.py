"""The seed study's simulated internet: the data file and the build profiles agree with the
article's table and with each other."""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections import Counter
from pathlib import Path

import pytest

from testbed._digest import file_sha256
from testbed._errors import ScenarioError
from testbed.lab.internet_map import load_internet
from testbed.lab.refclient.network import BuildProfile

from .conftest import profile_urls

ROOT = Path(__file__).resolve().parents[2]
INTERNET = ROOT / "scenarios" / "lab" / "internet-2013.yaml"
BUILDS = ("regular", "tom-en", "tom-zh")


@pytest.fixture(scope="module")
def internet():
    """The rows of the article's table (the download sites and the VPN exit are the lab's own
    additions)."""
    full = load_internet(INTERNET)
    return dataclasses.replace(full, servers=tuple(s for s in full.servers
                                                   if s.role not in ("download", "vpn-exit")))


def test_the_download_sites_stand_for_no_recorded_address() -> None:
    full = load_internet(INTERNET)
    sites = {s.name: s for s in full.servers if s.role == "download"}
    assert set(sites) == {"www.skype.lab.example", "skype.tom.lab.example"}
    www, tom = sites["www.skype.lab.example"], sites["skype.tom.lab.example"]
    assert www.redirects == {"CN": tom.name} and (www.country, tom.country) == ("US", "CN")
    assert www.stands_for is None and tom.stands_for is None and not www.contacted_by
    assert full.egress_country(tom.address) == "CN" and full.egress_country("10.0.0.1") is None
    assert full.by_name("WWW.Skype.lab.example.") is www


def test_one_server_per_row_of_the_seed_table(internet):
    assert len(internet.servers) + len(internet.special) == 62
    assert sum(s.country == "CN" for s in internet.servers) == 20
    # every real address from the article appears once
    assert len({s.stands_for for s in internet.servers}) == 61
    assert "211.100.40.15" in internet.stands_for().values()


def test_build_counts_survive(internet):
    counts = Counter(s.builds for s in internet.servers)
    assert counts == {1: 46, 2: 14, 3: 1}
    for s in internet.servers:
        assert len(s.contacted_by) == s.builds, s
        assert set(s.contacted_by) <= set(BUILDS)


def test_china_rows_are_reached_only_by_tom_builds(internet):
    for s in internet.servers:
        if s.country == "CN":
            assert "regular" not in s.contacted_by, s
            assert s.address.startswith("203.0.113.")


def test_ssdp_row_is_the_multicast_group(internet):
    (ssdp,) = internet.special
    assert ssdp.address == "239.255.255.250"
    assert ssdp.kind == "multicast"
    assert set(ssdp.contacted_by) == set(BUILDS)
    assert "239.255.255.250" not in internet.by_address()


@pytest.mark.parametrize("build", BUILDS)
def test_build_profiles_send_each_build_exactly_to_its_servers(internet, build):
    profile = BuildProfile.load(ROOT / "scenarios" / "lab" / "builds" / f"{build}.yaml")
    by_name = {s.name: s for s in internet.servers}
    hosts = {urllib.parse.urlsplit(u).hostname for u in profile_urls(profile)}
    expected = {s.name for s in internet.servers if build in s.contacted_by}
    assert hosts - {"239.255.255.250"} == expected
    assert urllib.parse.urlsplit(profile.relay).hostname in expected
    for u in profile.login:
        s = by_name[str(urllib.parse.urlsplit(u).hostname)]
        scheme = {"tls": "tls", "http": "http", "udp": "udp"}[s.proto]
        assert u.startswith(scheme + "://"), (u, s.proto)


def test_real_public_addresses_are_refused(tmp_path):
    bad = tmp_path / "internet.yaml"
    bad.write_text("servers:\n  - {address: 8.8.8.8, name: x.example, country: US, "
                   "stands_for: 8.8.8.8, builds: 1, contacted_by: [regular]}\n")
    with pytest.raises(ScenarioError, match="not in a documentation block"):
        load_internet(bad)


def test_duplicate_addresses_are_refused(tmp_path):
    bad = tmp_path / "internet.yaml"
    row = ("  - {address: 198.51.100.1, name: x.example, country: US, stands_for: 1.2.3.4, "
           "builds: 1, contacted_by: [regular]}\n")
    bad.write_text("servers:\n" + row + row)
    with pytest.raises(ScenarioError, match="duplicate address"):
        load_internet(bad)


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios" / "lab").glob("internet-*.yaml")),
                         ids=lambda p: p.name)
def test_a_checked_file_reads_the_same_without_checking_it_again(path: Path) -> None:
    assert load_internet(path, file_sha256(path)) == load_internet(path)


def test_a_file_changed_since_it_was_checked_is_checked_again(tmp_path: Path) -> None:
    """A run's copy read with the digest the run recorded is trusted as checked; edited
    since (another digest), it is checked, and what is wrong is said."""
    bad = tmp_path / "internet.yaml"
    bad.write_text(INTERNET.read_text().replace("address: 198.51.100.", "address: 8.8.8.", 1))
    checked_then = file_sha256(INTERNET)
    with pytest.raises(ScenarioError, match="documentation"):
        load_internet(bad, checked_then)
    with pytest.raises(ScenarioError, match="documentation"):
        load_internet(bad)
