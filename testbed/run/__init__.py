"""The run as typed data: one run directory's file names (:mod:`.files`) and its records —
manifest, events, TLS notes, endpoints and placements, chat evidence, verdicts — as frozen
dataclasses with ``to_json`` / ``from_json``, tolerant of older runs' files (missing optional
keys default, unknown keys are ignored). A damaged file is one ``RunFileError`` naming it.

    files       names, JSON plumbing, shape checks      store     read_* / write_* per file
    manifest    Manifest, Expectation, Phase, ...       events    Event, TlsRecord
    places      Placement, PlaceView, GeoipDatabase     endpoints EndpointsFile, EndpointRow
    evidence    EvidenceFile, ChatRecord, CanaryFile    verdicts  Verdict, VerdictsFile
    downloads   Download, Hop (from the events)
"""

from testbed.run.endpoints import CaptureDamage, EndpointRow, EndpointsFile, ReadStats
from testbed.run.events import Event, TlsRecord
from testbed.run.evidence import CanaryFile, ChatEvidence, ChatRecord, EvidenceFile
from testbed.run.manifest import CaptureCounts, ChatClaim, Expectation, Manifest, Phase
from testbed.run.places import GeoipDatabase, Placement, PlaceView
from testbed.run.verdicts import FAIL, INCONCLUSIVE, PASS, Verdict, VerdictsFile

__all__ = ["FAIL", "INCONCLUSIVE", "PASS", "CanaryFile", "CaptureCounts", "CaptureDamage",
           "ChatClaim",
           "ChatEvidence", "ChatRecord", "EndpointRow", "EndpointsFile", "Event", "EvidenceFile",
           "Expectation", "GeoipDatabase", "Manifest", "Phase", "PlaceView", "Placement",
           "ReadStats", "TlsRecord", "Verdict", "VerdictsFile"]
