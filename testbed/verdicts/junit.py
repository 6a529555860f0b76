"""``junit.xml`` for CI, in the shape pytest's junitxml plugin gives it (a ``testbed`` suite,
one test case per expectation with its verdict as a property; ``fail`` is a failure,
``inconclusive`` a skip, an evaluation that raised a failure with its traceback)."""

from __future__ import annotations

import datetime
import socket
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from testbed.run import FAIL, INCONCLUSIVE, Verdict
from testbed.run.files import MANIFEST


@dataclass(frozen=True)
class Case:
    verdict: Verdict
    seconds: float
    error: str | None = None  # the traceback when evaluating raised


def failure_text(v: Verdict) -> str:
    """The sentences a failed expectation is reported with (terminal and junit.xml)."""
    subject = f"chat {v.chat.sender} → {v.chat.recipient}" if v.chat else v.variant
    where = ", ".join(str(x) for x in v.place.values())
    lines = [f"expectation failed: {subject} {v.kind.replace('_', ' ')} {where}".rstrip(),
             f"  {v.reason}"]
    lines += [f"  evidence: {e.get('text', e)}" for e in v.evidence[:10]]
    return "\n".join(lines)


def _message(text: str) -> str:
    """pytest's short form of a long failure: two lines and how many more there are."""
    lines = text.splitlines()
    if len(lines) <= 2:
        return text
    return "\n".join(lines[:2]) + f"\n[+{len(lines) - 2} more lines; full report in element text]"


def write_junit(path: Path, cases: list[Case], started: datetime.datetime,
                seconds: float) -> None:
    suites = ET.Element("testsuites", name="pytest tests")
    failed = [c for c in cases if c.error or c.verdict.status == FAIL]
    skipped = [c for c in cases if not c.error and c.verdict.status == INCONCLUSIVE]
    suite = ET.SubElement(suites, "testsuite", name="testbed", errors="0",
                          failures=str(len(failed)), skipped=str(len(skipped)),
                          tests=str(len(cases)), time=f"{seconds:.3f}",
                          timestamp=started.isoformat(), hostname=socket.gethostname())
    for c in cases:
        v = c.verdict
        case = ET.SubElement(suite, "testcase", classname=MANIFEST, name=v.id,
                             time=f"{c.seconds:.3f}")
        props = ET.SubElement(case, "properties")
        if c.error:  # a defect: no verdict to state
            first = c.error.strip().splitlines()[-1]
            ET.SubElement(case, "failure", message=first).text = c.error
            continue
        ET.SubElement(props, "property", name="verdict", value=v.status)
        if v.status == FAIL:
            text = failure_text(v)
            ET.SubElement(case, "failure", message=_message(text)).text = text
        elif v.status == INCONCLUSIVE:
            ET.SubElement(case, "skipped", type="pytest.skip",
                          message=f"inconclusive: {v.reason}").text = \
                f"{path.parent / MANIFEST}: inconclusive: {v.reason}"
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
