"""What the agent accepts: the shape and the bounds of an authorised request, checked before
anything runs. A request that breaks them is refused with ``BadRequest`` (the server answers
400 with its message, one sentence), never with a handler traceback.

Standard library only: this module runs inside the guests.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from testbed.agent.verbs import IMAGE_VERBS, VERBS

MAX_BODY = 32 * 1024 * 1024      # bytes of one request body (reference images included)
MAX_FIELD = 64 * 1024            # characters of one text field (a typed text, an argv word)
MAX_STEPS = 1000                 # steps in one request
MAX_IMAGES = 200                 # reference images in one request
MAX_ARGV = 256                   # words of one ``run`` command / keys of one ``hotkey``
MAX_SECONDS = 3600.0             # a ``timeout`` or a ``sleep``
MAX_NESTING = 32                 # JSON depth (the json module recurses)
#: a name the host turns into a file (a screenshot, a reference image): a plain file name
PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")

# the options each verb may carry besides its own value
_OPTIONS: dict[str, frozenset[str]] = {
    "run": frozenset(),
    "click_image": frozenset({"confidence", "offset", "timeout"}),
    "wait_image": frozenset({"confidence", "timeout"}),
    "absent_image": frozenset({"confidence", "timeout"}),
    "wait_window": frozenset({"timeout"}),
    "type": frozenset({"secret"}),
    "press": frozenset(),
    "hotkey": frozenset(),
    "screenshot": frozenset(),
    "sleep": frozenset(),
    "download": frozenset({"timeout"}),
}


class BadRequest(Exception):
    """A request the agent will not run; the message says what is wrong with it."""


def plain_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not PLAIN_NAME.match(name) or ".." in name:
        raise BadRequest(f"{what} must be a plain file name (letters, digits, '.', '_', '-'; "
                         f"at most 100), not {_show(name)}")
    return name


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of a request body (an empty body is ``{}``)."""
    if not raw.strip():
        return {}
    depth = max_depth(raw)
    if depth > MAX_NESTING:
        raise BadRequest(f"the body nests {depth} levels deep (at most {MAX_NESTING})")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise BadRequest(f"the body is not JSON: {e}") from e
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, not {type(body).__name__}")
    return body


def max_depth(raw: bytes) -> int:
    """How deep brackets nest in ``raw`` (strings skipped), without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def steps_request(body: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """The steps and the reference images (decoded, not yet opened) of a ``/steps`` body."""
    unknown = sorted(set(body) - {"steps", "images"})
    if unknown:
        raise BadRequest(f"unknown field(s) in the body: {', '.join(map(_show, unknown))}")
    steps = body.get("steps", [])
    if not isinstance(steps, list):
        raise BadRequest(f"'steps' must be a list, not {type(steps).__name__}")
    if len(steps) > MAX_STEPS:
        raise BadRequest(f"{len(steps)} steps in one request (at most {MAX_STEPS})")
    images = body.get("images", {})
    if not isinstance(images, dict):
        raise BadRequest(f"'images' must be a mapping of file name to base64, "
                         f"not {type(images).__name__}")
    if len(images) > MAX_IMAGES:
        raise BadRequest(f"{len(images)} images in one request (at most {MAX_IMAGES})")
    decoded = {}
    for name, data in images.items():
        plain_name(name, "an image name")
        if not isinstance(data, str):
            raise BadRequest(f"image {name}: must be base64 text, not {type(data).__name__}")
        try:
            decoded[name] = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as e:
            raise BadRequest(f"image {name}: not base64: {e}") from e
    return [check_step(n, s) for n, s in enumerate(steps, 1)], decoded


def check_step(n: int, step: object) -> dict[str, Any]:
    """Step ``n`` if it is a well-formed step of the vocabulary (``testbed.agent.steps``)."""
    where = f"step {n}"
    if not isinstance(step, dict):
        raise BadRequest(f"{where} must be a mapping, not {type(step).__name__}")
    verbs = [k for k in step if k in VERBS]
    if len(verbs) != 1:
        raise BadRequest(f"{where} needs exactly one verb of {', '.join(VERBS)}; "
                         f"it has {', '.join(map(_show, sorted(step, key=str))) or 'none'}")
    verb = verbs[0]
    extra = sorted(set(step) - {verb} - _OPTIONS[verb], key=str)
    if extra:
        raise BadRequest(f"{where} ({verb}): unknown option(s) {', '.join(map(_show, extra))}")
    arg = step[verb]
    where = f"{where} ({verb})"
    if verb == "run":
        words = arg.split() if isinstance(arg, str) else arg
        _words(words, where, allow_empty=False)
    elif verb in IMAGE_VERBS:
        plain_name(arg, f"{where}: the image")
    elif verb in ("type", "press", "wait_window"):
        _text(arg, where)
    elif verb == "hotkey":
        _words(arg, where, allow_empty=False)
    elif verb == "screenshot":
        plain_name(arg, f"{where}: the screenshot name")
    elif verb == "sleep":
        _number(arg, where, 0.0, MAX_SECONDS)
    elif verb == "download":
        _text(arg, where)
    if "timeout" in step:
        _number(step["timeout"], f"{where}: timeout", 0.0, MAX_SECONDS)
    if "confidence" in step:
        _number(step["confidence"], f"{where}: confidence", 0.01, 1.0)
    if "offset" in step:
        off = step["offset"]
        if (not isinstance(off, list) or len(off) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and abs(v) <= 100_000
                           for v in off)):
            raise BadRequest(f"{where}: offset must be two whole numbers [dx, dy], "
                             f"not {_show(off)}")
    if "secret" in step and not isinstance(step["secret"], bool):
        raise BadRequest(f"{where}: secret must be true or false, not {_show(step['secret'])}")
    return step


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{where} must be text, not {type(value).__name__}")
    if len(value) > MAX_FIELD:
        raise BadRequest(f"{where}: {len(value)} characters (at most {MAX_FIELD})")
    if "\0" in value:
        raise BadRequest(f"{where}: a NUL character")
    return value


def _words(value: object, where: str, allow_empty: bool) -> list[str]:
    if not isinstance(value, list) or (not value and not allow_empty):
        raise BadRequest(f"{where} must be a non-empty list of words, not {_show(value)}")
    if len(value) > MAX_ARGV:
        raise BadRequest(f"{where}: {len(value)} words (at most {MAX_ARGV})")
    return [_text(w, where) for w in value]


def _number(value: object, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"{where} must be a number, not {_show(value)}")
    if not low <= value <= high:  # also refuses NaN
        raise BadRequest(f"{where} must be between {low:g} and {high:g}, not {value!r}")
    return float(value)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
