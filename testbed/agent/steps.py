"""The step vocabulary, in one place. An app profile composes these into named actions.

Every step is a mapping with exactly one verb key:

``{run: [argv...]}``
    start a program in the guest's desktop session (the host fills in the app's launch command)
``{click_image: FILE, confidence: 0.9, offset: [dx, dy], timeout: 10}``
    find a reference image on the screen (waiting up to ``timeout`` s) and click its centre,
    moved by ``offset``
``{wait_image: FILE, timeout: 20, confidence: 0.9}``
    wait until a reference image shows
``{absent_image: FILE, timeout: 5, confidence: 0.9}``
    watch the screen for ``timeout`` seconds: the step fails if the image shows (e.g. a
    message that must not be delivered)
``{wait_window: TITLE, timeout: 10}``
    wait until a window whose title contains TITLE shows, then raise it and give it the
    keyboard focus (lab guests have no window manager: keys go where the focus is put)
``{type: TEXT, secret: false}``
    type text; ASCII with the keyboard, anything else by clipboard paste. ``secret`` keeps the
    text out of every log
``{press: KEY}`` / ``{hotkey: [KEY, ...]}``
    press one key / a key combination
``{screenshot: NAME}``
    take a screenshot, returned to the host as ``NAME.png``
``{sleep: SECONDS}``
    wait
``{download: URL, timeout: 10}``
    fetch URL as a browser would, following redirects (``testbed.agent.download``): the step's
    ``detail`` records each hop, the final host and the sha256 of what was served

Steps run with pyautogui on the display in ``DISPLAY``. A failing step raises ``StepFailed``
with a message for people; the agent then takes a screenshot of the moment.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import os
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageGrab

from testbed.agent import match
from testbed.agent.clipboard import ClipboardOwner
from testbed.agent.download import DownloadFailed, download, summary
from testbed.agent.verbs import DEFAULT_TIMEOUT, VERBS
from testbed.agent.windows import focus_window

DEFAULT_CONFIDENCE = 0.9
POLL = 0.1  # seconds between two looks at the screen
CLIPBOARD_TIMEOUT = 5.0


class StepFailed(Exception):
    """A step could not be done; the message says which and why."""


@dataclass
class StepContext:
    """What steps may use: reference images by file name, and where launched programs go."""

    images: Mapping[str, Image.Image]
    spawn: Callable[[list[str]], int]
    screenshots: dict[str, bytes] = field(default_factory=dict)
    detail: dict[str, Any] | None = None  # what the last step recorded (a download), if any


def verb_of(step: Mapping[str, Any]) -> str:
    verbs = [k for k in step if k in VERBS]
    if len(verbs) != 1:
        raise StepFailed(f"a step needs exactly one of {', '.join(VERBS)}: {sorted(step)}")
    return verbs[0]


def describe(step: Mapping[str, Any]) -> str:
    """The step as a log line, with secret text replaced."""
    verb = verb_of(step)
    if verb == "type" and step.get("secret"):
        return "type <secret>"
    return f"{verb} {step[verb]}"


def grab(attempts: int = 3) -> Image.Image:
    """The screen. Each grab opens an X connection, which a busy X server now and then
    refuses ("X connection failed"): such a grab is tried again."""
    for attempt in range(attempts):
        try:
            return ImageGrab.grab(xdisplay=os.environ.get("DISPLAY"))
        except OSError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05)
    raise AssertionError("unreachable")


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _gui() -> Any:
    import pyautogui  # imported late: it needs DISPLAY

    pyautogui.PAUSE = 0.0  # no fixed pause: every step that depends on the screen waits for it
    return pyautogui


@functools.cache
def has_opencv() -> bool:
    """Whether pyautogui can match with OpenCV here (else ``testbed.agent.match``)."""
    return importlib.util.find_spec("cv2") is not None


def locate(ctx: StepContext, name: str, confidence: float, timeout: float) -> tuple[int, int]:
    """Centre of reference image ``name`` on the screen, waiting up to ``timeout`` seconds."""
    if name not in ctx.images:
        raise StepFailed(f"no reference image {name!r}")
    gui = _gui()
    needle = ctx.images[name]
    deadline = time.monotonic() + timeout
    seen = b""  # the screen last searched: an unchanged screen is not searched again
    while True:
        screen = grab()
        pixels = screen.tobytes()
        if pixels != seen:  # (a search costs ~85 ms of CPU, a look ~3 ms)
            seen = pixels
            # only where something is drawn: windows, not the bare (black) root window
            left, top, right, bottom = screen.getbbox() or (0, 0, 0, 0)
            box = None
            if right - left >= needle.width and bottom - top >= needle.height:
                area = screen.crop((left, top, right, bottom))
                if not has_opencv():  # a VM from Debian's packages: numpy only
                    box = match.locate(needle, area, confidence)
                else:
                    try:
                        box = gui.locate(needle, area, confidence=confidence)
                    except gui.ImageNotFoundException:
                        pass
            if box is not None:
                return (left + int(box.left + box.width // 2),
                        top + int(box.top + box.height // 2))
        if time.monotonic() >= deadline:
            raise StepFailed(f"image {name} not found on screen within {timeout:g} s")
        time.sleep(POLL)


def type_text(text: str) -> None:
    gui = _gui()
    if text.isascii():
        gui.write(text)  # X delivers key events in order: no pause between them
        return
    # pyautogui types ASCII only: paste anything else through the clipboard, once it holds
    # the text, and go on only once the app has been given it (see testbed.agent.clipboard)
    owner = ClipboardOwner(text)
    try:
        deadline = time.monotonic() + CLIPBOARD_TIMEOUT
        while _clipboard() != text:
            if time.monotonic() >= deadline:
                raise StepFailed(f"the clipboard did not take the text within "
                                 f"{CLIPBOARD_TIMEOUT:g} s")
            time.sleep(0.02)
        # our own read was one request: the owner may report it served only now, so wait for
        # that first (else it would pass for the app's), then paste and wait for the app's
        if not owner.wait_served(0, CLIPBOARD_TIMEOUT):
            raise StepFailed("the clipboard's owner did not answer our own read")
        ours = owner.served
        gui.hotkey("ctrl", "v")
        if not owner.wait_served(ours, CLIPBOARD_TIMEOUT):
            raise StepFailed(f"the app did not take the pasted text within "
                             f"{CLIPBOARD_TIMEOUT:g} s (is a text field focused?)")
        # xclip reports a request served before its answer has left its X buffer; it flushes
        # before it reads the next request, so one more read of ours is the barrier: once it is
        # answered, the app's answer is at the X server, ahead of whatever we send next
        _clipboard()
    finally:
        owner.close()


def _clipboard() -> str:
    res = subprocess.run(["xclip", "-o", "-selection", "clipboard"], capture_output=True,
                         timeout=5, check=False)
    return res.stdout.decode("utf-8", errors="replace") if res.returncode == 0 else ""


def run_step(ctx: StepContext, step: Mapping[str, Any]) -> str:
    """Run one step; returns a short outcome. Raises StepFailed."""
    verb = verb_of(step)
    arg = step[verb]
    conf = float(step.get("confidence", DEFAULT_CONFIDENCE))
    timeout = float(step.get("timeout", DEFAULT_TIMEOUT))
    ctx.detail = None
    gui: Any = (None if verb in ("run", "screenshot", "sleep", "absent_image", "wait_window",
                                 "download")
                else _gui())
    try:
        if verb == "run":
            argv = [str(a) for a in arg] if isinstance(arg, list) else str(arg).split()
            return f"started pid {ctx.spawn(argv)}"
        if verb == "click_image":
            x, y = locate(ctx, str(arg), conf, timeout)
            dx, dy = step.get("offset", (0, 0))
            gui.click(x + int(dx), y + int(dy))
            return f"clicked {x + int(dx)},{y + int(dy)}"
        if verb == "wait_image":
            x, y = locate(ctx, str(arg), conf, timeout)
            return f"seen at {x},{y}"
        if verb == "absent_image":
            try:
                x, y = locate(ctx, str(arg), conf, timeout)
            except StepFailed as e:
                if str(e).startswith("no reference image"):
                    raise
                return f"not seen in {timeout:g} s"
            raise StepFailed(f"image {arg} showed at {x},{y} (it must not)")
        if verb == "wait_window":
            try:
                return f"focused {focus_window(str(arg), timeout)!r}"
            except TimeoutError as e:
                raise StepFailed(str(e)) from e
        if verb == "type":
            type_text(str(arg))
            return "typed"
        if verb == "press":
            gui.press(str(arg))
            return "pressed"
        if verb == "hotkey":
            gui.hotkey(*[str(k) for k in arg])
            return "pressed"
        if verb == "screenshot":
            ctx.screenshots[str(arg)] = png(grab())
            return f"screenshot {arg}"
        if verb == "sleep":
            time.sleep(float(arg))
            return "slept"
        if verb == "download":
            try:
                ctx.detail = download(str(arg), timeout)
            except DownloadFailed as e:
                ctx.detail = e.record | {"error": str(e)}
                raise StepFailed(f"download failed: {e}") from e
            return summary(ctx.detail)
    except StepFailed:
        raise
    except Exception as e:  # pyautogui, Xlib and OS errors become step failures
        raise StepFailed(f"{describe(step)}: {type(e).__name__}: {e}") from e
    raise StepFailed(f"unknown verb {verb}")
