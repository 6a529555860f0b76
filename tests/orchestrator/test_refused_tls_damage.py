"""An empty flow file is damage only when the TLS log shows connections whose content belongs
in it: the client finished its handshake with the gateway. A client that refused the gateway's
certificate (seen: Firefox without our CA in its profile's store) left nothing to decrypt, so
its run's flow file is rightly empty — no warning, no damaged capture."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from testbed.cli import main
from testbed.run import files as f
from tests.support import analysed_seed

HELLO = {"event": "clienthello", "client": "10.77.0.10", "server": "198.51.100.247",
         "port": 443, "sni": "srv-204-9-163-247.ee.lab.example", "passthrough": False}


def _log(conn: str, end: str, t: float) -> list[dict[str, object]]:
    last = {"event": end, "side": "client", "conn": conn, "client": "10.77.0.10",
            "server": "198.51.100.247", "port": 443, "sni": HELLO["sni"], "time": t + 0.1}
    if end == "tls_failed":
        last["error"] = "The client does not trust the proxy's certificate (unknown ca)"
    return [HELLO | {"conn": conn, "time": t}, last]


# the TLS log's connections (how each ended) -> whether the empty flow file is damage
CASES = {
    "all refused": (["tls_failed", "tls_failed"], False),
    "one finished": (["tls_failed", "tls_established"], True),
    "all finished": (["tls_established"], True),
}


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return analysed_seed(tmp_path_factory)


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_empty_flow_file_is_damage_only_for_finished_handshakes(
        seed: Path, tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    ends, damaged = CASES[case]
    run = tmp_path / "skype-2013-lab" / "seed-run"
    shutil.copytree(seed, run)
    start = 1796084490.0
    records = [r for i, end in enumerate(ends) for r in _log(f"c{i}", end, start + i)]
    (run / f.TLS).write_text("".join(json.dumps(r) + "\n" for r in records))
    (run / f.FLOWS).write_bytes(b"")
    main(["analyze", str(run)])
    out = capsys.readouterr().out
    damage = json.loads((run / f.ENDPOINTS).read_text()).get("damage", [])
    flows = [d for d in damage if d["file"] == f.FLOWS]
    if damaged:
        finished = ends.count("tls_established")
        assert flows and f"shows {finished} intercepted TLS connections" in flows[0]["reason"]
        assert "flows.mitm is empty" in out
    else:
        assert flows == [], flows
        assert "flows.mitm is empty" not in out
