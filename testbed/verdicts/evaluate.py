"""Expectations → verdicts, each with its reason and evidence. Never a silent pass.

``RunFacts`` is what verdicts rest on, read from a run directory; ``evaluate`` hands each
expectation to its kind's module: ``reach`` (where a variant went) and ``chat`` (a message's
path and delivery). A verdict is ``pass`` or ``fail`` on evidence, and ``inconclusive``, with
the reason, whenever the run cannot support the claim either way.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
CHAT_KINDS = ("passes_through", "does_not_pass_through", "delivered", "not_delivered")


@dataclass
class Verdict:
    id: str
    variant: str
    kind: str
    place: dict[str, str]
    status: str
    reason: str
    evidence: list[dict[str, Any]] = field(default_factory=list)
    geoip: list[dict[str, Any]] = field(default_factory=list)
    chat: dict[str, str] | None = None  # for chat claims: from, to, text_contains

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunFacts:
    """What verdicts rest on, read from a run directory."""

    endpoints: list[dict[str, Any]]
    places: dict[str, dict[str, Any]]
    capture: dict[str, Any]
    failed_actions: dict[str, list[str]]
    geoip: list[dict[str, Any]]
    actions: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    chats: list[dict[str, Any]] = field(default_factory=list)
    canary: str = ""
    pinned: list[dict[str, Any]] = field(default_factory=list)

    def doubts(self, variant: str) -> list[str]:
        """Why a negative claim about ``variant`` could not be trusted on this run."""
        out = []
        if not self.capture.get("complete"):
            out.append("the capture is incomplete (tcpdump did not stop cleanly)")
        elif self.capture.get("dropped"):
            out.append(f"the capture dropped {self.capture['dropped']} packets")
        if self.failed_actions.get(variant):
            out.append(f"{variant}'s actions did not all succeed: "
                       + "; ".join(self.failed_actions[variant]))
        return out

    def action_at(self, variant: str, t: float) -> str:
        """Which action of ``variant`` was under way at time ``t`` (for sentences)."""
        for e in self.actions:
            if e.get("variant") == variant and e["start"] <= t <= e["end"]:
                return f"during {e['action']}"
        before = [e for e in self.actions if e.get("variant") == variant and e["end"] < t]
        return f"after {before[-1]['action']}" if before else "before the first action"

    @classmethod
    def load(cls, run: Path) -> RunFacts:
        manifest = json.loads((run / "manifest.json").read_text())
        analysis_file = run / "analysis" / "endpoints.json"
        analysis = json.loads(analysis_file.read_text()) if analysis_file.exists() else {}
        failed: dict[str, list[str]] = {}
        actions: list[dict[str, Any]] = []
        events_file = run / "events.jsonl"
        events = [json.loads(x) for x in events_file.read_text().splitlines() if x.strip()] \
            if events_file.exists() else []
        for e in events:
            if isinstance(e.get("start"), int | float) and isinstance(e.get("end"), int | float):
                actions.append({k: e.get(k) for k in ("variant", "action", "start", "end")})
            if e.get("outcome") != "ok":
                failed.setdefault(e["variant"], []).append(
                    f"{e['action']} {e.get('outcome')}: {e.get('error')}")
        evidence_file = run / "analysis" / "evidence.json"
        chats = json.loads(evidence_file.read_text()).get("chats", []) \
            if evidence_file.exists() else []
        tls_file = run / "capture" / "tls.jsonl"
        pinned = [r for r in map(json.loads, tls_file.read_text().splitlines())
                  if r.get("event") == "pinned"] if tls_file.exists() else []
        return cls(endpoints=list(analysis.get("endpoints", [])),
                   places=dict(analysis.get("places", {})),
                   capture=dict(manifest.get("capture", {})), failed_actions=failed,
                   geoip=list(analysis.get("geoip", [])),
                   actions=sorted(actions, key=lambda a: float(a["start"])),
                   events=events, chats=list(chats), canary=str(manifest.get("canary") or ""),
                   pinned=pinned)


def evaluate(expectation: dict[str, Any], facts: RunFacts) -> Verdict:
    """The verdict on one expectation (the manifest's form of a scenario expectation)."""
    if expectation["kind"] in CHAT_KINDS:
        from testbed.verdicts.chat import evaluate_chat

        return evaluate_chat(expectation, facts)
    from testbed.verdicts.reach import evaluate_reach

    return evaluate_reach(expectation, facts)
