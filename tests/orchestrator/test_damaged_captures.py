"""A folder of damaged captures: truncated at many offsets, wrong magic, absurd lengths,
garbage. Analysis goes up to the damage with a warning, or stops with a clear error
(exit 2); it never produces a traceback."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from testbed._errors import CaptureFormatError
from testbed.orchestrator.analyze import analyze_run
from testbed.orchestrator.rundir import RunDir


def damaged(good: bytes) -> dict[str, bytes]:
    out = {f"truncated-at-{n}": good[:n] for n in range(0, len(good), 13)}
    out["wrong-magic"] = b"\x00\x11\x22\x33" + good[4:]
    absurd = bytearray(good)
    struct.pack_into("<I", absurd, 24 + 8, 0xFFFFFFF0)  # first record's captured length
    out["absurd-record-length"] = bytes(absurd)
    out["absurd-snaplen"] = good[:16] + struct.pack("<I", 0xFFFFFFFF) + good[20:]
    out["garbage"] = bytes(range(256)) * 8
    out["text"] = b"this is not a capture\n" * 20
    out["pcapng-bad-block"] = struct.pack("<II", 0x0A0D0D0A, 7) + b"\x4d\x3c\x2b\x1a" + good
    return out


@pytest.fixture
def folder(run: RunDir, tmp_path: Path) -> Path:
    d = tmp_path / "damaged"
    d.mkdir()
    for name, data in damaged(run.pcap.read_bytes()).items():
        (d / f"{name}.pcap").write_bytes(data)
    return d


def test_every_damaged_capture_is_analysed_or_refused_cleanly(run, folder):
    good = json.loads(run.path.joinpath("manifest.json").read_text())
    outcomes = {}
    for f in sorted(folder.iterdir()):
        run.pcap.write_bytes(f.read_bytes())
        run.update_manifest(**good)
        try:
            analysis = analyze_run(run)
        except CaptureFormatError as e:
            assert f.name.split(".")[0] in ("wrong-magic", "garbage", "text",
                                            "pcapng-bad-block", "truncated-at-0",
                                            "truncated-at-13") or "link type" in str(e), e
            assert "gateway.pcap" in str(e)
            outcomes[f.name] = "refused"
            continue
        warnings = analysis.report.stats.warnings
        outcomes[f.name] = f"{len(analysis.report.endpoints)} endpoints, {len(warnings)} warnings"
        if f.name.startswith("absurd-record-length"):
            assert warnings and analysis.report.endpoints == []
    assert "refused" in outcomes.values()
    assert any("warnings" in o and not o.endswith(" 0 warnings") for o in outcomes.values())


@pytest.mark.parametrize("name,code", [("garbage", 2), ("truncated-at-130", 0),
                                       ("absurd-record-length", 1)])
def test_cli_exit_codes_and_no_traceback(run, folder, name, code):
    run.pcap.write_bytes((folder / f"{name}.pcap").read_bytes())
    out = subprocess.run([sys.executable, "-m", "testbed", "analyze", str(run.path)],
                         capture_output=True, text=True, timeout=120)
    assert "Traceback" not in out.stderr + out.stdout
    if code == 2:
        assert out.returncode == 2 and "gateway.pcap" in out.stderr
    else:
        assert out.returncode in (0, 1)  # analysed; verdicts decide the exit status


def _flows(run: RunDir) -> bytes:
    from mitmproxy import io
    from mitmproxy.test import tflow

    path = run.path / "capture" / "flows.mitm"
    with path.open("wb") as f:
        w = io.FlowWriter(f)
        for _ in range(3):
            w.add(tflow.tflow(resp=True))
    return path.read_bytes()


def test_corrupt_flow_file_is_a_clear_error(run):
    _flows(run)
    (run.path / "capture" / "flows.mitm").write_bytes(b"\x00garbage" * 100)
    out = subprocess.run([sys.executable, "-m", "testbed", "analyze", str(run.path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert "flows.mitm" in out.stderr and "Traceback" not in out.stderr


def test_truncated_flow_file_is_analysed_with_a_warning(run):
    data = _flows(run)
    (run.path / "capture" / "flows.mitm").write_bytes(data[: len(data) - 40])
    analysis = analyze_run(run)
    assert any("flows.mitm" in w for w in analysis.warnings)
    assert analysis.report.endpoints
