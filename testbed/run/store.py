"""Reading and writing one run directory's records by file (names in :mod:`.files`).

``read_*`` give ``None`` (or an empty list) for a file the run does not have, and raise
:class:`~testbed._errors.RunFileError` naming the file when it is there but damaged.
"""

from __future__ import annotations

from pathlib import Path

from testbed._errors import TestbedError
from testbed.run import files as f
from testbed.run.endpoints import EndpointsFile
from testbed.run.events import Event, TlsRecord
from testbed.run.evidence import CanaryFile, EvidenceFile
from testbed.run.manifest import Manifest
from testbed.run.verdicts import Verdict, VerdictsFile


def open_manifest(run: Path) -> Manifest:
    """The manifest of ``run``, which must be a run directory (TestbedError if not)."""
    manifest = read_manifest(run)
    if manifest is None:
        raise TestbedError(f"{run}: not a run directory (no {f.MANIFEST})")
    return manifest


def withdraw_derived(run: Path, names: tuple[str, ...] = f.DERIVED) -> list[str]:
    """Remove what analysing and judging ``run`` wrote (``names``: by default all of
    ``files.DERIVED``), so that no verdict, junit.xml or report outlives the evidence it was
    made from; the names removed. Only in a run (or one whose manifest is gone): a folder that
    never was one is left alone."""
    if not f.was_run(run):
        return []
    removed = []
    for name in names:
        try:
            (run / name).unlink()
        except (FileNotFoundError, NotADirectoryError):  # not there (or its folder is not)
            continue
        except IsADirectoryError as e:
            raise TestbedError(f"{run / name}: a folder where a file belongs") from e
        except OSError as e:
            raise TestbedError(f"{run / name}: cannot be removed: {e.strerror or e}") from e
        removed.append(name)
    return removed


def read_manifest(run: Path) -> Manifest | None:
    p = run / f.MANIFEST
    return f.load_json(p, Manifest.from_json) if p.is_file() else None


def write_manifest(run: Path, manifest: Manifest) -> None:
    f.dump_json(run / f.MANIFEST, manifest.to_json(), indent=2)


def read_events(run: Path, skip_damaged: bool = False) -> tuple[list[Event], int]:
    """The events and how many damaged lines were skipped (see ``files.load_lines``)."""
    p = run / f.EVENTS
    return f.load_lines(p, Event.from_json, skip_damaged) if p.is_file() else ([], 0)


def append_event(run: Path, event: Event) -> None:
    f.append_line(run / f.EVENTS, event.to_json())


def read_tls(run: Path, skip_damaged: bool = False) -> tuple[list[TlsRecord], int]:
    p = run / f.TLS
    return f.load_lines(p, TlsRecord.from_json, skip_damaged) if p.is_file() else ([], 0)


def read_endpoints(run: Path) -> EndpointsFile | None:
    p = run / f.ENDPOINTS
    return f.load_json(p, EndpointsFile.from_json) if p.is_file() else None


def write_endpoints(run: Path, endpoints: EndpointsFile) -> None:
    f.dump_json(run / f.ENDPOINTS, endpoints.to_json())


def read_evidence(run: Path) -> EvidenceFile | None:
    p = run / f.EVIDENCE
    return f.load_json(p, EvidenceFile.from_json) if p.is_file() else None


def write_evidence(run: Path, evidence: EvidenceFile) -> None:
    f.dump_json(run / f.EVIDENCE, evidence.to_json())


def read_canary(run: Path) -> CanaryFile | None:
    p = run / f.CANARY
    return f.load_json(p, CanaryFile.from_json) if p.is_file() else None


def write_canary(run: Path, canary: CanaryFile) -> None:
    f.dump_json(run / f.CANARY, canary.to_json())


def read_verdicts(run: Path) -> list[Verdict] | None:
    p = run / f.VERDICTS
    return list(f.load_json(p, VerdictsFile.from_json).verdicts) if p.is_file() else None


def write_verdicts(run: Path, verdicts: list[Verdict]) -> None:
    f.dump_json(run / f.VERDICTS, VerdictsFile(tuple(verdicts)).to_json())
