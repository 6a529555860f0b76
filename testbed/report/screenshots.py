"""Screenshots, phase by phase: one row per phase, one column per variant, each a small inline
image with what the action did."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from testbed.run import Event

from . import charts
from .data import RunData
from .endpoints import Column
from .fmt import duration, text
from .images import thumbnail_data_uri

PHASE_ORDER = ("launch", "login", "about", "call", "incoming_call", "answer", "hang_up",
               "chat_send", "chat_wait", "chat")
THUMBNAIL_THREADS = min(4, os.cpu_count() or 1)  # thumbnails made side by side (8 guests: 32)


@dataclass(frozen=True)
class Shot:
    uri: str  # empty: the file is not a readable image
    alt: str
    file: str  # relative to the run
    failed: bool
    caption: str  # "action: outcome, 1.2 s"
    error: str


@dataclass(frozen=True)
class Phase:
    name: str
    shots: tuple[Shot | None, ...]  # one per variant; None where it has none


@dataclass(frozen=True)
class Screenshots:
    variants: tuple[Column, ...]
    phases: tuple[Phase, ...]


def phase_order(data: RunData) -> list[str]:
    """Phases in the order the events took them, then the known order, then by name."""
    seen: list[str] = []
    for ev in sorted(data.events, key=lambda ev: ev.start or 0.0):
        for name in ev.screenshots:
            if name not in seen:
                seen.append(name)
    rest = {p for shots in data.screenshots.values() for p in shots} - set(seen)
    rank = {p: i for i, p in enumerate(PHASE_ORDER)}
    seen += sorted(rest, key=lambda p: (rank.get(p, len(rank)), p))
    return [p for p in seen if any(p in shots for shots in data.screenshots.values())]


def _shot(data: RunData, variant: str, phase: str, ev: Event | None,
          uris: dict[Path, str | None]) -> Shot | None:
    """The screenshot of ``phase``, captioned by the action that took it (``ev``)."""
    path = data.screenshots.get(variant, {}).get(phase)
    if path is None:
        return None
    caption = ""
    if ev:
        dur = duration(ev.start, ev.end)
        caption = f"{ev.action}: {text(ev.outcome)}" + (f", {dur:.1f} s" if dur > 0 else "")
    rel = path.relative_to(data.path) if path.is_relative_to(data.path) else path
    return Shot(uri=uris.get(path) or "", alt=f"{variant}: {phase}", file=str(rel),
                failed=phase.endswith("-failure") or bool(ev and ev.outcome not in (None, "ok")),
                caption=caption, error=(ev.error or "") if ev else "")


def screenshots(data: RunData) -> Screenshots:
    variants = [v for v in data.variants if v in data.screenshots]
    variants += [v for v in data.screenshots if v not in variants]
    by_shot = {(ev.variant, name): ev for ev in data.events for name in ev.screenshots}
    paths = [p for v in variants for p in data.screenshots[v].values()]
    with ThreadPoolExecutor(max_workers=THUMBNAIL_THREADS) as pool:  # Pillow frees the GIL
        uris = dict(zip(paths, pool.map(thumbnail_data_uri, paths), strict=True))
    phases = tuple(Phase(p.replace("_", " "),
                         tuple(_shot(data, v, p, by_shot.get((v, p)), uris) for v in variants))
                   for p in phase_order(data))
    columns = tuple(Column(v, colour=charts.variant_colour(data.variants.index(v))
                                  if v in data.variants else "") for v in variants)
    return Screenshots(columns, phases)
