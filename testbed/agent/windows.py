"""Top-level windows of the guest's X display, by title (python-xlib, which pyautogui brings).

Lab guests have no window manager: a new window is not raised or given the keyboard, and keys
go to the window under the pointer. ``focus_window`` finds a mapped window whose title holds a
text, raises it and gives it the keyboard focus, as a window manager would on a click."""

from __future__ import annotations

import os
import time
from typing import Any

POLL = 0.1  # seconds between two looks at the window tree


def _title(d: Any, w: Any) -> str:
    for prop in (d.intern_atom("_NET_WM_NAME"), d.intern_atom("WM_NAME")):
        try:
            value = w.get_full_property(prop, 0)
        except Exception:  # the window went away meanwhile
            return ""
        if value is not None and value.value:
            raw = value.value
            return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return ""


def _find(d: Any, text: str) -> tuple[Any, str] | None:
    """The top-most mapped window (a child of the root, or one level below it) whose title
    contains ``text``."""
    from Xlib import X

    found = None
    for top in d.screen().root.query_tree().children:  # bottom to top
        try:
            if top.get_attributes().map_state != X.IsViewable:
                continue
            candidates = [top, *top.query_tree().children]
        except Exception:  # the window went away meanwhile
            continue
        for w in candidates:
            title = _title(d, w)
            if text in title:
                found = (w, title)
                break
    return found


def focus_window(text: str, timeout: float) -> str:
    """Wait up to ``timeout`` s for a window whose title contains ``text``; raise it and give
    it the keyboard focus. Returns its title; raises TimeoutError."""
    from Xlib import X, display

    d = display.Display(os.environ.get("DISPLAY"))
    try:
        deadline = time.monotonic() + timeout
        while True:
            hit = _find(d, text)
            if hit is not None:
                w, title = hit
                w.raise_window()
                w.set_input_focus(X.RevertToPointerRoot, X.CurrentTime)
                d.sync()
                return title
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no window titled with {text!r} within {timeout:g} s")
            time.sleep(POLL)
    finally:
        d.close()
