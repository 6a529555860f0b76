"""`testbed schedule install|remove` in a tmp unit dir, with a fake systemctl runner. Nothing
here touches the machine's systemd configuration."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from testbed.history import schedule
from testbed.history.errors import BadInput, HistoryError

from .conftest import cli


class FakeRunner:
    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail_on = fail_on

    def __call__(self, argv: Sequence[str]) -> None:
        self.calls.append(list(argv))
        if self.fail_on and self.fail_on in argv:
            raise HistoryError(f"{' '.join(argv)} failed: Unit not loaded")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "repo dir"
    r.mkdir()
    (r / "Makefile").write_text("nightly:\n")
    return r


@pytest.fixture
def systemd_up(tmp_path: Path) -> Path:
    marker = tmp_path / "run-systemd-system"
    marker.mkdir()
    return marker


def test_install_writes_units_without_enabling(tmp_path, repo):
    units = tmp_path / "units"
    runner = FakeRunner()
    res = schedule.install("02:00", unit_dir=units, enable=False, runner=runner, repo=repo,
                           via="make", systemd_marker=tmp_path / "absent")
    assert runner.calls == []
    service = (units / "testbed-nightly.service").read_text()
    timer = (units / "testbed-nightly.timer").read_text()
    assert f"WorkingDirectory={repo}\n" in service
    assert "ExecStart=" in service and service.split("ExecStart=")[1].split()[1] == "nightly"
    assert "Type=oneshot" in service and "User=root" in service
    assert "OnCalendar=*-*-* 02:00:00\n" in timer
    assert "Persistent=true\n" in timer
    assert "Unit=testbed-nightly.service" in timer and "WantedBy=timers.target" in timer
    text = "\n".join(res.messages)
    assert "not enabled (--no-enable)" in text
    assert "systemctl enable --now" in text
    cron = res.messages[-1].strip()
    assert cron.startswith(f"0 2 * * * cd '{repo}' && PATH=")
    assert "/usr/sbin" in cron and cron.endswith("nightly >> results/nightly.log 2>&1")


def test_install_via_testbed_uses_the_venv(tmp_path, repo):
    units = tmp_path / "units"
    schedule.install("23:59", unit_dir=units, enable=False, repo=repo, via="testbed",
                     runner=FakeRunner())
    service = (units / "testbed-nightly.service").read_text()
    assert f"ExecStart='{repo}/.venv/bin/testbed' nightly" in service
    assert "OnCalendar=*-*-* 23:59:00" in (units / "testbed-nightly.timer").read_text()
    assert schedule.crontab_line("23:59", repo, ["x", "nightly"]).startswith("59 23 * * * ")


def test_install_enables_in_a_custom_dir_by_linking(tmp_path, repo, systemd_up):
    units = tmp_path / "units"
    runner = FakeRunner()
    res = schedule.install("7:05", unit_dir=units, runner=runner, repo=repo,
                           systemd_marker=systemd_up)
    assert runner.calls == [
        ["systemctl", "link", str(units / "testbed-nightly.service")],
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "--now", str(units / "testbed-nightly.timer")],
    ]
    assert "OnCalendar=*-*-* 07:05:00" in (units / "testbed-nightly.timer").read_text()
    assert any(m.startswith("enabled: testbed-nightly.timer") for m in res.messages)
    assert res.messages[-1].strip().startswith("5 7 * * * ")


def test_install_enables_in_systemds_own_dir(tmp_path, repo, systemd_up, monkeypatch):
    units = tmp_path / "etc-systemd-system"
    monkeypatch.setattr(schedule, "SYSTEMD_DIRS", (units,))
    runner = FakeRunner()
    schedule.install("02:00", unit_dir=units, runner=runner, repo=repo,
                     systemd_marker=systemd_up)
    assert runner.calls == [["systemctl", "daemon-reload"],
                            ["systemctl", "enable", "--now", "testbed-nightly.timer"]]


def test_install_without_systemd_says_so(tmp_path, repo):
    runner = FakeRunner()
    res = schedule.install("02:00", unit_dir=tmp_path / "u", runner=runner, repo=repo,
                           systemd_marker=tmp_path / "no-such")
    assert runner.calls == []
    assert any("systemd is not running" in m for m in res.messages)
    assert "crontab" in res.messages[-2]


@pytest.mark.parametrize("at", ["25:00", "12:60", "2am", "", "02:00:00", "-1:00", "2:5"])
def test_bad_at_is_rejected(tmp_path, capsys, at):
    with pytest.raises(BadInput):
        schedule.parse_at(at)
    units = tmp_path / "u"
    code, out, err = cli(capsys, "schedule", "install", f"--at={at}", "--unit-dir",
                         str(units), "--no-enable")
    assert code == 2 and out == ""
    assert err.strip() == (f"testbed: --at {at!r}: expected a time as HH:MM on a 24-hour "
                           "clock, e.g. 02:00")
    assert not units.exists()


def test_cli_install_and_remove_in_a_tmp_dir(tmp_path, capsys):
    units = tmp_path / "u"
    code, out, err = cli(capsys, "schedule", "install", "--at", "03:30", "--unit-dir",
                         str(units), "--no-enable")
    assert (code, err) == (0, "")
    assert "OnCalendar=*-*-* 03:30:00" in (units / "testbed-nightly.timer").read_text()
    assert "30 3 * * * cd " in out
    code, out, _ = cli(capsys, "schedule", "remove", "--unit-dir", str(units), "--no-disable")
    assert code == 0 and "removed" in out
    assert list(units.iterdir()) == []


def test_remove_disables_then_deletes(tmp_path, repo, systemd_up):
    units = tmp_path / "units"
    schedule.install("02:00", unit_dir=units, enable=False, repo=repo, runner=FakeRunner())
    runner = FakeRunner()
    res = schedule.remove(unit_dir=units, runner=runner, systemd_marker=systemd_up)
    assert runner.calls == [
        ["systemctl", "disable", "--now", "testbed-nightly.timer", "testbed-nightly.service"],
        ["systemctl", "daemon-reload"],
    ]
    assert sorted(p.name for p in res.files) == ["testbed-nightly.service",
                                                 "testbed-nightly.timer"]
    assert list(units.iterdir()) == []


def test_remove_survives_a_unit_systemd_never_loaded(tmp_path, repo, systemd_up):
    units = tmp_path / "units"
    schedule.install("02:00", unit_dir=units, enable=False, repo=repo, runner=FakeRunner())
    res = schedule.remove(unit_dir=units, runner=FakeRunner(fail_on="disable"),
                          systemd_marker=systemd_up)
    assert any(m.startswith("warning:") for m in res.messages)
    assert list(units.iterdir()) == []


def test_remove_nothing_and_no_systemd(tmp_path, repo):
    runner = FakeRunner()
    res = schedule.remove(unit_dir=tmp_path / "empty", runner=runner)
    assert "nothing to remove" in res.messages[0] and runner.calls == []
    units = tmp_path / "units"
    schedule.install("02:00", unit_dir=units, enable=False, repo=repo, runner=runner)
    res = schedule.remove(unit_dir=units, runner=runner, systemd_marker=tmp_path / "absent")
    assert runner.calls == [] and list(units.iterdir()) == []
    assert any("systemd is not running" in m for m in res.messages)


def test_help_texts(capsys):
    for argv in (["schedule", "install", "--help"], ["schedule", "remove", "--help"],
                 ["nightly", "--help"], ["diff", "--help"], ["history", "--help"]):
        with pytest.raises(SystemExit) as e:
            cli(capsys, *argv)
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert "usage:" in out and len(out) > 300, argv
