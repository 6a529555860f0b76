"""diff_runs / format_diff / `testbed diff` on hand-made run directories."""

from __future__ import annotations

import json

import pytest

from testbed.history.diff import diff_runs, format_diff
from testbed.history.errors import BadInput

from .conftest import BASE_ENDPOINTS, T0, cli, make_run


def with_extra(variant: str, *addresses: str) -> dict[str, list[str]]:
    eps = {v: list(a) for v, a in BASE_ENDPOINTS.items()}
    eps[variant] = eps[variant] + list(addresses)
    return eps


def test_identical_pair_is_no_change(results, capsys):
    a = make_run(results, "r1")
    b = make_run(results, "r2", started=T0 + 100)
    d = diff_runs(a, b)
    assert not d.changed
    assert format_diff(d).splitlines()[-1] == "no change"
    code, out, err = cli(capsys, "diff", str(a), str(b))
    assert (code, err) == (0, "")
    assert "no change" in out


def test_country_appears_with_the_endpoint_that_brought_it(results):
    a = make_run(results, "r1")
    b = make_run(results, "r2", endpoints=with_extra("regular", "203.0.113.15"))
    d = diff_runs(a, b)
    reg = d.variant("regular")
    assert reg is not None
    assert [e.address for e in reg.endpoints_added] == ["203.0.113.15"]
    assert list(reg.countries_added) == ["CN"]
    assert reg.organizations_added == ["China Unicom Beijing"]
    assert reg.asns_added == [4808]
    assert not d.variant("tom-en").changed  # type: ignore[union-attr]
    text = format_diff(d)
    assert "regular: now reaches CN (new: 203.0.113.15 stands for 211.100.40.15)" in text
    assert 'regular: now reaches organisation "China Unicom Beijing"' in text
    assert "regular: now reaches AS4808" in text
    assert "regular: new endpoint 203.0.113.15 (CN, stands for 211.100.40.15, " \
           "srv-211-100-40-15.cn.lab.example, tcp/443)" in text


def test_country_and_org_disappear(results):
    a = make_run(results, "r1")
    eps = {"regular": ["198.51.100.16", "239.255.255.250"], "tom-en": BASE_ENDPOINTS["tom-en"]}
    b = make_run(results, "r2", endpoints=eps)
    d = diff_runs(a, b)
    reg = d.variant("regular")
    assert reg is not None
    assert [e.address for e in reg.endpoints_removed] == ["198.51.100.10"]
    assert list(reg.countries_removed) == ["US"]
    assert reg.organizations_removed == ["Microsoft"] and reg.asns_removed == [8075]
    text = format_diff(d)
    assert "regular: no longer reaches US (gone: 198.51.100.10 stands for 157.55.56.150)" in text
    assert 'regular: no longer reaches organisation "Microsoft"' in text
    assert "regular: endpoint gone 198.51.100.10" in text


def test_a_second_address_in_a_known_country_is_an_endpoint_not_a_country(results):
    a = make_run(results, "r1")
    b = make_run(results, "r2", endpoints=with_extra("tom-en", "203.0.113.18"))
    v = diff_runs(a, b).variant("tom-en")
    assert v is not None and v.changed
    assert [e.address for e in v.endpoints_added] == ["203.0.113.18"]
    assert not v.countries_added and not v.organizations_added


def test_special_purpose_addresses_are_endpoints_not_countries(results):
    eps = {"regular": ["198.51.100.10"], "tom-en": BASE_ENDPOINTS["tom-en"]}
    a = make_run(results, "r1", endpoints=eps)
    b = make_run(results, "r2", endpoints=eps | {
        "regular": ["198.51.100.10", "10.77.0.1", "239.255.255.250"]})
    v = diff_runs(a, b).variant("regular")
    assert v is not None
    assert sorted(e.address for e in v.endpoints_added) == ["10.77.0.1", "239.255.255.250"]
    assert not v.countries_added and not v.organizations_added and not v.asns_added
    text = format_diff(diff_runs(a, b))
    assert "239.255.255.250 (multicast, udp/1900)" in text
    assert "now reaches" not in text


def test_verdict_change_gives_both_reasons(results):
    a = make_run(results, "r1")
    b = make_run(results, "r2", endpoints=with_extra("regular", "203.0.113.15"))
    d = diff_runs(a, b)
    [c] = d.verdicts
    assert (c.id, c.before, c.after, c.regressed) == (
        "regular-never_reaches-country-CN", "pass", "fail", True)
    text = format_diff(d)
    assert "verdict regular-never_reaches-country-CN: pass -> fail (REGRESSION)" in text
    assert "was: regular contacted 3 endpoints, none in CN" in text
    assert "now: regular reached CN: 203.0.113.15" in text


def test_verdict_that_appears_or_improves_is_not_a_regression(results):
    a = make_run(results, "r1", verdicts={"x": ("inconclusive", "login failed")})
    b = make_run(results, "r2", verdicts={"x": ("pass", "fine"), "y": ("pass", "new")})
    changes = {c.id: c for c in diff_runs(a, b).verdicts}
    assert (changes["x"].before, changes["x"].after) == ("inconclusive", "pass")
    assert (changes["y"].before, changes["y"].after) == (None, "pass")
    assert not any(c.regressed for c in changes.values())
    assert "verdict y: absent -> pass" in format_diff(diff_runs(a, b))


def test_status_change_and_missing_analysis(results):
    a = make_run(results, "r1")
    b = make_run(results, "r2", status="failed", analysed=False, verdicts={})
    d = diff_runs(a, b)
    assert d.changed and d.status_changed
    text = format_diff(d)
    assert "run status: complete -> failed" in text
    assert "r2 has no analysis/endpoints.json" in text


def test_new_variant_is_one_line_not_every_endpoint(results):
    a = make_run(results, "r1")
    b = make_run(results, "r2", endpoints=BASE_ENDPOINTS | {"control": ["198.51.100.10"]})
    text = format_diff(diff_runs(a, b))
    assert "control: new variant (not in r1): 1 endpoint(s)" in text
    assert "control: now reaches US" in text
    assert "control: new endpoint" not in text


def test_json_output(results, capsys):
    a = make_run(results, "r1")
    b = make_run(results, "r2", endpoints=with_extra("regular", "203.0.113.15"))
    code, out, _ = cli(capsys, "diff", str(a), str(b), "--json")
    assert code == 1
    data = json.loads(out)
    assert data["changed"] is True
    [reg] = [v for v in data["variants"] if v["variant"] == "regular"]
    assert reg["countries"]["added"] == {"CN": ["203.0.113.15"]}
    assert reg["endpoints"]["added"][0]["stands_for"] == "211.100.40.15"
    assert data["verdicts"][0]["regressed"] is True
    assert diff_runs(a, b).to_json() == data


def test_changed_pair_exits_1(results, capsys):
    a = make_run(results, "r1")
    b = make_run(results, "r2", endpoints=with_extra("tom-en", "198.51.100.50"))
    code, out, _ = cli(capsys, "diff", str(a), str(b))
    assert code == 1
    assert "tom-en: now reaches GB (new: 198.51.100.50 stands for 81.2.69.50)" in out


@pytest.mark.parametrize("bad", ["missing", "no-manifest", "garbage"])
def test_bad_input_is_one_line_exit_2(results, tmp_path, capsys, bad):
    good = make_run(results, "r1")
    target = tmp_path / bad
    if bad != "missing":
        target.mkdir()
    if bad == "garbage":
        (target / "manifest.json").write_text("{not json")
    code, out, err = cli(capsys, "diff", str(good), str(target))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"testbed: {target}")
    with pytest.raises(BadInput):
        diff_runs(target, good)
