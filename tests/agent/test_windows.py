"""``wait_window``: a window found by its title is raised and given the keyboard, on a display
without a window manager (as in the lab's guests), so keys typed next reach it and no other."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from testbed.agent.requests import BadRequest, check_step
from testbed.agent.steps import StepContext, StepFailed, run_step

from .xdisplay import xvfb

pytestmark = pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb (make setup)")

# An app: one Tk window with an entry at +0+0, titled by its argument; after a few seconds it
# prints what its entry holds. Two of them are started, the second on top of the first.
APP = textwrap.dedent('''
    import sys, tkinter as tk
    root = tk.Tk(); root.title(sys.argv[1]); root.geometry("300x80+0+0")
    entry = tk.Entry(root); entry.pack(); entry.focus_set()
    root.after(int(float(sys.argv[2]) * 1000), root.quit)
    root.mainloop()
    print(entry.get(), flush=True)
''')


def _typed(tmp_path, titles: list[str]) -> tuple[str, str]:
    """What each of the two windows got when the agent focused ``titles`` in turn and typed
    ``typed<i>`` after focusing the i-th."""
    with xvfb(size="640x480x24") as display:
        (tmp_path / ".Xauthority").touch()
        env = dict(os.environ, DISPLAY=f":{display}", HOME=str(tmp_path))
        apps = []
        for name in ("first window", "second window"):
            apps.append(subprocess.Popen([sys.executable, "-c", APP, name, "5"], env=env,
                                         stdout=subprocess.PIPE, text=True))
            time.sleep(1.0)  # the second maps after (on top of) the first
        agent = textwrap.dedent('''
            import sys
            from testbed.agent import steps
            ctx = steps.StepContext(images={}, spawn=lambda argv: 0)
            steps._gui().moveTo(600, 400)   # the pointer over no window
            for i, title in enumerate(sys.argv[1:]):
                print(steps.run_step(ctx, {"wait_window": title, "timeout": 5}), flush=True)
                steps.run_step(ctx, {"type": f"typed{i}"})
        ''')
        res = subprocess.run([sys.executable, "-c", agent, *titles], env=env,
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        first, second = (p.communicate(timeout=30)[0].strip() for p in apps)
    return first, second


@pytest.mark.parametrize(("titles", "first", "second"), [
    (["second"], "", "typed0"),
    (["first"], "typed0", ""),
    (["first window", "second window"], "typed0", "typed1"),
    (["second", "first"], "typed1", "typed0"),
])
def test_keys_go_to_the_window_named_by_its_title(tmp_path, titles, first, second):
    assert _typed(tmp_path, titles) == (first, second)


def test_a_window_that_never_shows_fails_the_step_with_its_title(tmp_path, monkeypatch):
    with xvfb(size="320x240x24") as display:
        (tmp_path / ".Xauthority").touch()
        monkeypatch.setenv("DISPLAY", f":{display}")
        monkeypatch.setenv("HOME", str(tmp_path))
        ctx = StepContext(images={}, spawn=lambda argv: 0)
        with pytest.raises(StepFailed, match=re.escape(
                "no window titled with 'Chat with bob' within 0.3 s")):
            run_step(ctx, {"wait_window": "Chat with bob", "timeout": 0.3})


@pytest.mark.parametrize("step", [
    {"wait_window": "Buddy List"},
    {"wait_window": "Buddy List", "timeout": 30},
])
def test_the_agent_accepts_a_window_step(step):
    assert check_step(1, step) == step


@pytest.mark.parametrize(("step", "message"), [
    ({"wait_window": "x", "confidence": 0.9}, "unknown option"),
    ({"wait_window": ["x"]}, "wait_window"),
    ({"wait_window": "x", "timeout": -1}, "timeout"),
])
def test_the_agent_refuses_a_malformed_window_step(step, message):
    with pytest.raises(BadRequest, match=message):
        check_step(1, step)
