"""``wait_window``: a window found by its title is raised and given the keyboard, on a display
without a window manager (as in the lab's guests), so keys typed next reach it and no other."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from testbed.agent.requests import BadRequest, check_step
from testbed.agent.steps import StepContext, StepFailed, run_step

from .xdisplay import xvfb

pytestmark = pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb (make setup)")

# Two Tk windows with an entry each, one on top of the other at +0+0; the agent focuses the
# windows named on the command line in turn and types into each; each entry's text is printed.
APP = textwrap.dedent('''
    import sys, threading, tkinter as tk
    from testbed.agent import steps
    root = tk.Tk(); root.title("first window"); root.geometry("300x80+0+0")
    one = tk.Entry(root); one.pack(); one.focus_set()
    top = tk.Toplevel(root); top.title("second window"); top.geometry("300x80+0+0")
    two = tk.Entry(top); two.pack(); two.focus_set()
    ctx = steps.StepContext(images={}, spawn=lambda argv: 0)
    def agent():
        steps._gui().moveTo(600, 400)   # the pointer over no window
        for i, title in enumerate(sys.argv[1:]):
            print(steps.run_step(ctx, {"wait_window": title, "timeout": 5}), flush=True)
            steps.run_step(ctx, {"type": f"typed{i}"})
        root.after(500, root.quit)
    root.after(500, lambda: threading.Thread(target=agent, daemon=True).start())
    root.after(60000, root.quit)
    root.mainloop()
    print("FIRST", one.get(), "SECOND", two.get(), flush=True)
''')


def _app(tmp_path, titles: list[str]) -> str:
    with xvfb(size="640x480x24") as display:
        (tmp_path / ".Xauthority").touch()
        env = dict(os.environ, DISPLAY=f":{display}", HOME=str(tmp_path))
        res = subprocess.run([sys.executable, "-c", APP, *titles], env=env,
                             capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.mark.parametrize(("titles", "first", "second"), [
    (["second"], "", "typed0"),
    (["first"], "typed0", ""),
    (["first window", "second window"], "typed0", "typed1"),
    (["second", "first"], "typed1", "typed0"),
])
def test_keys_go_to_the_window_named_by_its_title(tmp_path, titles, first, second):
    out = _app(tmp_path, titles)
    assert f"FIRST {first} SECOND {second}".split() == out.splitlines()[-1].split(), out
    assert "focused 'first window'" in out or "first" not in " ".join(titles)


def test_a_window_that_never_shows_fails_the_step_with_its_title(tmp_path):
    with xvfb(size="320x240x24") as display:
        (tmp_path / ".Xauthority").touch()
        env = {"DISPLAY": f":{display}", "HOME": str(tmp_path)}
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            ctx = StepContext(images={}, spawn=lambda argv: 0)
            with pytest.raises(StepFailed, match="no window titled with 'Chat with bob' "
                                                 "within 0.3 s"):
                run_step(ctx, {"wait_window": "Chat with bob", "timeout": 0.3})
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


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
