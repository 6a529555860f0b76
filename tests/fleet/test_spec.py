"""Matrix files: scenarios x builds x vantages x repeat, constraints, and the one-line refusals
of bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.fleet.engine import FleetInputError
from testbed.fleet.spec import JobSpec, for_scenario, load_matrix
from tests.fleet.conftest import ROOT

SCENARIOS = ROOT / "scenarios"
SEED = SCENARIOS / "skype-2013-lab.yaml"


@pytest.fixture
def matrix_file(tmp_path):
    def make(text: str) -> Path:
        path = tmp_path / "matrix.yaml"
        path.write_text(text.replace("skype-2013-lab.yaml", str(SEED)))
        return path

    return make


@pytest.mark.parametrize(("body", "count"), [
    ("scenarios: [skype-2013-lab.yaml]", 1),
    ("scenarios: [skype-2013-lab.yaml]\nrepeat: 4", 4),
    ("scenarios: [skype-2013-lab.yaml]\nbuilds: [lab/builds/regular.yaml, "
     "lab/builds/tom-en.yaml]", 2),
    ("scenarios: [skype-2013-lab.yaml]\nbuilds: [lab/builds/regular.yaml, "
     "lab/builds/tom-en.yaml]\nvantages: [{route: simulated}, {route: vpn, exit: CN}]", 4),
    ("scenarios: [skype-2013-lab.yaml]\nvantages: [{}, {exit: US}]\nrepeat: 3", 6),
])
def test_a_matrix_is_the_product_of_its_axes(matrix_file, body, count):
    jobs = load_matrix(matrix_file(body), SCENARIOS)
    assert len(jobs) == count
    assert len({j.job_id for j in jobs}) == count, "every job has its own id"
    assert all(j.scenario == "skype-2013-lab.yaml" and j.provider == "lab" for j in jobs)


def test_vantages_and_constraints_become_queues(matrix_file):
    jobs = load_matrix(matrix_file(
        "scenarios: [skype-2013-lab.yaml]\nconstraints: {provider: lab}\n"
        "vantages: [{route: simulated}, {route: vpn, exit: CN}]"), SCENARIOS)
    assert [j.queue for j in jobs] == ["fleet.lab.simulated.any", "fleet.lab.vpn.CN"]
    assert "route=vpn exit=CN" in jobs[1].label


@pytest.mark.parametrize(("body", "says"), [
    ("- just a list", "a matrix is a mapping with 'scenarios:'"),
    ("scenarios: []", "a non-empty list"),
    ("scenarios: [skype-2013-lab.yaml]\nrepeat: 0", "repeat: a whole number"),
    ("scenarios: [skype-2013-lab.yaml]\nrepeat: true", "repeat: a whole number"),
    ("scenarios: [skype-2013-lab.yaml]\nbuilds: regular", "builds and vantages are lists"),
    ("scenarios: [skype-2013-lab.yaml]\nhosts: 3", "unknown key(s) hosts"),
    ("scenarios: [skype-2013-lab.yaml]\nconstraints: {gpu: yes}", "constraints are a mapping"),
    ("scenarios: [skype-2013-lab.yaml]\nconstraints: {provider: vagrant}",
     "constraint provider: vagrant, but the scenario runs on provider lab"),
    ("scenarios: [skype-2013-lab.yaml]\nbuilds: [lab/builds/nope.yaml]",
     "build lab/builds/nope.yaml: no such build profile"),
    ("scenarios: [skype-2013-lab.yaml]\nvantages: [route]", "constraints are a mapping"),
    ("scenarios: [\n", "cannot read the matrix"),
])
def test_a_bad_matrix_is_refused_in_one_sentence(matrix_file, body, says):
    with pytest.raises(FleetInputError, match=None) as e:
        load_matrix(matrix_file(body), SCENARIOS)
    assert says in str(e.value)
    assert e.value.exit_code == 2


def test_a_scenario_outside_the_shared_root_is_refused(tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    with pytest.raises(FleetInputError, match="not under the scenarios root"):
        for_scenario(SEED, other)


def test_a_job_spec_survives_json():
    job = for_scenario(SEED, SCENARIOS, {"route": "vpn", "exit": "CN"}, nightly=True)
    assert JobSpec.from_json(job.to_json()) == job
    assert job.sha256 and job.queue == "fleet.lab.vpn.CN" and job.nightly
