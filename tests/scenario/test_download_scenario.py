"""The seed's download phase in the scenario: the default-vantage session and claims, the
CN-vantage half kept ready in comments (valid once uncommented), and the schema's checks of
download claims."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from testbed.lab.services.sites import download_sha256
from testbed.scenario import check_files, load_scenario

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "scenarios" / "skype-2013-lab.yaml"
URL = "http://www.skype.lab.example/SkypeSetup.exe"


def commented(text: str, start: str, stop: str) -> list[str]:
    """The commented lines from the one starting with ``start`` up to (not with) ``stop``."""
    lines = text.splitlines()
    i = next(n for n, line in enumerate(lines) if line.lstrip("# ").startswith(start))
    out = []
    for line in lines[i:]:
        if out and (not line.lstrip().startswith("#") or line.lstrip("# ").startswith(stop)):
            break
        out.append(line)
    return out


def uncomment(lines: list[str], strip: str) -> str:
    return "".join(line.replace(strip, "", 1) + "\n" for line in lines)


@pytest.fixture
def cn_ready(tmp_path: Path) -> Path:
    """The seed scenario with its CN-vantage half uncommented (the route, which the lab's VPN
    exit will give, left out)."""
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    text = SEED.read_text(encoding="utf-8")
    client = uncomment(commented(text, "cn-visitor:", "- name:"), "  #   ")
    client = re.sub(r",\s*route: <[^>]*>", "", client)
    session = uncomment(commented(text, "- name: download-from-china", "xx"), "#   ")
    claims = uncomment(commented(text, "- id: china-vantage-download", "xx"), "# ")
    text = text.replace("\nsessions:\n", "\n" + client + "sessions:\n", 1)
    text = text.replace("\nexpectations:\n", "\n" + session + "expectations:\n", 1)
    path = tmp_path / "scenarios" / "skype-2013-lab-cn.yaml"
    path.write_text(text + "\n" + claims, encoding="utf-8")
    return path


def test_the_default_vantage_claims_name_www_skypes_build() -> None:
    s = load_scenario(SEED)
    claims = {e.id: e for e in s.expectations if e.download}
    assert set(claims) == {"default-vantage-download-not-redirected",
                           "default-vantage-gets-skypes-build"}
    assert all(e.variant == "regular" and e.download == URL for e in claims.values())
    assert claims["default-vantage-gets-skypes-build"].place == {
        "sha256": download_sha256("www.skype.lab.example", "/SkypeSetup.exe")}


def test_the_cn_vantage_half_is_ready(cn_ready: Path) -> None:
    assert check_files([str(cn_ready)]) == []
    s = load_scenario(cn_ready)
    assert "cn-visitor" in s.clients
    steps = [st for x in s.sessions for st in x.steps if st.variant == "cn-visitor"]
    assert [(st.action, st.params) for st in steps] == [("download", {"url": URL})]
    claims = {e.id: e for e in s.expectations if e.variant == "cn-visitor"}
    assert claims["china-vantage-download-redirected-to-tom"].place == {"host": "*.tom.*"}
    assert claims["china-vantage-gets-toms-build"].place == {
        "sha256": download_sha256("skype.tom.lab.example", "/SkypeSetup.exe")}


@pytest.mark.parametrize(("claim", "message"), [
    ("{variant: regular, served: {sha256: abc}}", "served.sha256"),
    ("{variant: regular, redirected_to: {}}", "redirected_to"),
    ("{variant: regular, redirected_to: {host: '*.tom.*', country: CN}}", "redirected_to"),
    ("{not_redirected_to: {host: '*.tom.*'}}", "variant"),
    ("{variant: regular, download: 7, served: {sha256: '" + "0" * 64 + "'}}", "download"),
])
def test_bad_download_claims_are_refused(tmp_path: Path, claim: str, message: str) -> None:
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")
    path = tmp_path / "scenarios" / "x.yaml"
    path.write_text(SEED.read_text(encoding="utf-8") + f"  - {claim}\n", encoding="utf-8")
    problems = [str(p) for p in check_files([str(path)])]
    assert len(problems) == 1 and message in problems[0], problems
