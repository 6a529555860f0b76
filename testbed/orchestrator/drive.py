"""Drive the scenario's sessions: turn each step into its app-profile action, send the action's
steps to the variant's agent, and record what happened in ``events.jsonl``.

A failed action (timeout, image not found, agent unreachable) keeps its error and a screenshot
of the guest at that moment; the variant's later actions are skipped and say why; other
variants go on. Verdicts that depend on a failed or skipped action become inconclusive. An
action that does not answer within its steps' own timeouts plus a margin fails as timed out.

A **watch** (an action that only looks: ``absent_image`` steps, and screenshots) keeps its
whole window, but runs beside the steps that follow as long as they involve other variants:
the variant's next step, and the end of the sessions, wait for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from testbed._errors import TestbedError
from testbed.agent.client import CANCEL_SECONDS
from testbed.agent.verbs import DEFAULT_TIMEOUT, IMAGE_VERBS, TIMED_VERBS
from testbed.orchestrator.backend import DEFAULT, BackendTimeout, Pending, Timeouts, call
from testbed.orchestrator.rundir import RunDir
from testbed.provider.abstracts import GuestHandle
from testbed.scenario import Scenario, Step
from testbed.scenario.model import fill

WATCH_VERBS = ("absent_image", "screenshot")


def budget(steps: list[dict[str, Any]], timeouts: Timeouts) -> float:
    """How long an action may take: its steps' own timeouts and sleeps, plus a margin."""
    if timeouts.action is not None:
        return timeouts.action
    total = timeouts.action_margin
    for s in steps:
        if any(v in s for v in TIMED_VERBS):
            total += float(s.get("timeout", DEFAULT_TIMEOUT))
        elif "sleep" in s:
            total += float(s["sleep"])
        total += timeouts.per_step
    return total


def _fill_any(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        return fill(value, values)
    if isinstance(value, list):
        return [_fill_any(v, values) for v in value]
    return value


class Driver:
    def __init__(self, scenario: Scenario, guests: dict[str, GuestHandle], run: RunDir,
                 canary: str, progress: Callable[[str], None],
                 timeouts: Timeouts = DEFAULT) -> None:
        self.scenario, self.guests, self.run = scenario, guests, run
        self.canary = canary
        self.progress = progress
        self.timeouts = timeouts
        self.failed: dict[str, str] = {}  # variant -> first failed action
        self.watches: dict[str, threading.Thread] = {}  # variant -> its running watch
        self.watch_errors: list[BaseException] = []  # what a watch raised, for the driver
        self.stopped = False  # interrupted: start nothing more

    def is_watch(self, step: Step) -> bool:
        raw = self.scenario.clients[step.variant].app.actions[step.action]
        return (all(any(v in s for v in WATCH_VERBS) for s in raw)
                and any("absent_image" in s for s in raw))

    def values(self, step: Step) -> dict[str, str]:
        client = self.scenario.clients[step.variant]
        guest = self.guests[step.variant]
        values = {"user": client.user, "password": client.password(), "canary": self.canary,
                  "python": guest.env.get("python", "python3"),
                  "build": guest.env.get("build", str(client.build_path or ""))}
        params = {k: fill(v, {"canary": self.canary}) for k, v in step.params.items()}
        values.update(params)
        for k, v in step.params.items():
            if v in self.scenario.clients:
                values[f"{k}_user"] = self.scenario.clients[v].user
        return values

    def resolve(self, step: Step) -> tuple[list[dict[str, Any]], dict[str, Path]]:
        """The agent steps of one scenario step, placeholders filled, and the images they use."""
        app = self.scenario.clients[step.variant].app
        values = self.values(step)
        out, images = [], {}
        for raw in app.actions[step.action]:
            s = {k: _fill_any(v, values) for k, v in raw.items()}
            if "run" in raw and raw["run"] == "launch":
                s["run"] = [fill(a, values) for a in app.launch]
            if "type" in raw and "{password}" in str(raw["type"]):
                s["secret"] = True
            for verb in IMAGE_VERBS:
                if verb in s:
                    images[s[verb]] = app.images_dir / s[verb]
            out.append(s)
        return out, images

    def act(self, session: str, step: Step) -> bool:
        if self.stopped:
            return False
        start = time.time()
        record: dict[str, Any] = {"session": session, "variant": step.variant,
                                  "action": step.action, "start": start,
                                  "params": {k: v for k, v in self.values(step).items()
                                             if k in step.params}}
        if step.variant in self.failed:
            record.update(end=start, outcome="skipped",
                          error=f"skipped: {step.variant}'s action "
                                f"{self.failed[step.variant]!r} failed earlier")
            self.run.event(**record)
            self.progress(f"  {step.variant}: {step.action} skipped")
            return False
        steps, images = self.resolve(step)
        agent, limit = self.guests[step.variant].agent, budget(steps, self.timeouts)
        try:
            answer = call(f"{step.variant}'s {step.action}",
                          lambda: agent.run_steps(steps, images, timeout=limit), limit,
                          awaited=False)
        except BackendTimeout as e:
            answer = {"ok": False, "error": f"timed out: {e}", "results": [], "screenshots": {}}
        except TestbedError as e:
            answer = {"ok": False, "error": str(e), "results": [], "screenshots": {}}
        shots = {}
        for name, data in answer.get("screenshots", {}).items():
            fname = name if name != "failure" else f"{step.action}-failure"
            shots[name] = str(self.run.screenshot(step.variant, fname, data)
                              .relative_to(self.run.path))
        ok = bool(answer.get("ok"))
        record.update(end=time.time(), outcome="ok" if ok else "failed",
                      error=answer.get("error"), steps=answer.get("results", []),
                      screenshots=shots)
        self.run.event(**record)
        took = record["end"] - start
        if ok:
            self.progress(f"  {step.variant}: {step.action} ok ({took:.1f} s)")
        else:
            self.failed.setdefault(step.variant, step.action)
            self.progress(f"  {step.variant}: {step.action} FAILED: {answer.get('error')}")
        return ok

    def drive(self) -> None:
        try:
            for session in self.scenario.sessions:
                self.progress(f"session {session.name}")
                if not session.parallel:
                    for step in session.steps:
                        self.step(session.name, step)
                    continue
                # parallel: each variant's steps in order, variants at the same time
                lanes: dict[str, list[Step]] = {}
                for step in session.steps:
                    lanes.setdefault(step.variant, []).append(step)
                self._parallel(session.name, lanes)
            for variant in list(self.watches):
                self.join_watch(variant)
        except BaseException:
            self.stopped = True  # lanes and watches still running start nothing more
            raise  # (the caller tells the agents to stop: ``cancel``)

    def _parallel(self, session: str, lanes: dict[str, list[Step]]) -> None:
        """Each lane on a daemon thread: an interrupted run neither waits for the actions in
        flight nor is held at exit by them (``cancel`` tells their agents to stop)."""
        errors: list[BaseException] = []

        def lane(steps: list[Step]) -> None:
            try:
                self._lane(session, steps)
            except BaseException as e:  # handed to the driving thread
                errors.append(e)
                self.stopped = True

        threads = [threading.Thread(target=lane, args=(steps,), daemon=True,
                                    name=f"lane {variant}") for variant, steps in lanes.items()]
        for t in threads:
            t.start()
        while not errors:
            alive = [t for t in threads if t.is_alive()]  # (one may end between two looks)
            if not alive:
                break
            alive[0].join(0.2)
        if errors:
            raise errors[0]

    def cancel(self) -> None:
        """Ask every agent to stop its running steps, all at once, waiting ``CANCEL_SECONDS``
        at most (an agent that does not answer is torn down with its guest)."""
        pending = [Pending(f"cancel {v}", g.agent.cancel, awaited=False)
                   for v, g in self.guests.items()]
        deadline = time.monotonic() + CANCEL_SECONDS
        for p in pending:
            try:
                p.result(max(0.0, deadline - time.monotonic()))
            except Exception:  # best effort: teardown removes what does not stop
                pass

    def step(self, session: str, step: Step) -> None:
        """One scenario step, after the variant's running watch; a watch runs beside what
        follows."""
        self.join_watch(step.variant)
        if self.stopped:
            return
        if self.is_watch(step):
            t = threading.Thread(target=self._watch, args=(session, step), daemon=True,
                                 name=f"watch {step.variant} {step.action}")
            self.watches[step.variant] = t
            t.start()
        else:
            self.act(session, step)

    def _watch(self, session: str, step: Step) -> None:
        try:
            self.act(session, step)
        except BaseException as e:  # (a full disk): raised where the watch is joined
            self.watch_errors.append(e)

    def join_watch(self, variant: str) -> None:
        t = self.watches.pop(variant, None)
        if t is not None:
            t.join()
        if self.watch_errors:
            raise self.watch_errors.pop(0)

    def _lane(self, session: str, steps: list[Step]) -> None:
        for step in steps:
            self.step(session, step)
