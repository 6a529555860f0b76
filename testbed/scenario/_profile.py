"""Checks of an app profile beyond its schema: the name matches the file, placeholders are
plain and known, ``{password}`` goes only where it is typed as a secret, reference images are
plain names inside the profile's images folder (and, for a run, present there)."""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from testbed.agent.verbs import IMAGE_VERBS
from testbed.scenario._build import Doc
from testbed.scenario._checks import SECRET, outside_message, plain_placeholders, within
from testbed.scenario._problem import KeyPath, Problem

Add = Callable[[Problem], None]
BASE_PLACEHOLDERS = frozenset({"user", "password", "canary", "python", "build"})
# the launch command may use the base placeholders and the fields of the step whose action
# runs it (``{url}``: checked per step by the scenario), never {password}: argv is visible to
# every process
LAUNCH_REFUSED = frozenset({SECRET})
MAX_IMAGE_BYTES = 16 << 20  # a reference image is a crop of a screen: kilobytes


def images_dir(doc: Doc) -> Path:
    """The folder of the profile's reference images (``images``, default the app's name)."""
    data = doc.data
    name = data.get("images", data.get("app"))
    return Path(doc.file).parent / (name if isinstance(name, str) and name else "images")


def image_refs(doc: Doc) -> Iterator[tuple[KeyPath, str]]:
    """Every reference image the profile names: (key path, file name)."""
    actions = doc.data.get("actions")
    for name, steps in actions.items() if isinstance(actions, dict) else ():
        for j, step in enumerate(steps if isinstance(steps, list) else []):
            for verb in IMAGE_VERBS:
                value = step.get(verb) if isinstance(step, dict) else None
                if isinstance(value, str) and value:
                    yield ("actions", name, j, verb), value


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        yield from (v for v in value if isinstance(v, str))


def _placeholders(doc: Doc, at: KeyPath, text: str, add: Add,
                  refused: frozenset[str] = frozenset()) -> list[str]:
    try:
        names = plain_placeholders(text)
    except ValueError as e:
        add(doc.at(at, f"bad placeholder in {text[:60]!r}: {e}"))
        return []
    for name in names:
        if name in refused:
            usable = ", ".join("{" + n + "}" for n in sorted(BASE_PLACEHOLDERS - refused))
            add(doc.at(at, f"unknown placeholder {{{name}}} in the launch command (it may use "
                           f"{usable} and the fields of the step that launches, e.g. {{url}}; "
                           f"{{password}} is typed only, by a `type` step with `secret: true`)"))
    return names


def launch_placeholders(launch: Any) -> set[str]:
    """The placeholders the profile's launch command uses (bad ones left out)."""
    out: set[str] = set()
    for text in _texts(launch):
        try:
            out.update(plain_placeholders(text))
        except ValueError:
            pass  # reported in the app profile
    return out


def check_profile(doc: Doc, roots: Sequence[Path], add: Add) -> None:
    data = doc.data
    app = data.get("app")
    stem = Path(doc.file).stem
    if isinstance(app, str) and app != stem:
        add(doc.at(("app",), f"app name {app!r} does not match the file name {stem + '.yaml'!r}"))
    for i, text in enumerate(data.get("launch") or [] if isinstance(data.get("launch"), list)
                             else []):
        if isinstance(text, str):
            _placeholders(doc, ("launch", i), text, add, LAUNCH_REFUSED)
    actions = data.get("actions")
    for name, steps in actions.items() if isinstance(actions, dict) else ():
        for j, step in enumerate(steps if isinstance(steps, list) else []):
            for key, value in step.items() if isinstance(step, dict) else ():
                at = ("actions", name, j, key)
                for text in _texts(value):
                    found = _placeholders(doc, at, text, add)
                    if key in IMAGE_VERBS and found:
                        add(doc.at(at, "a reference image is a plain file name, without "
                                       "placeholders"))
                    elif SECRET in found and not (key == "type" and step.get("secret") is True):
                        add(doc.at(at, "{password} may only be typed by a `type` step with "
                                       "`secret: true` (anywhere else it would be logged)"))
    images = data.get("images")
    if isinstance(images, str) and images and not within(Path(doc.file).parent / images, roots):
        add(doc.at(("images",), outside_message(images, roots[0])))
        return
    folder = images_dir(doc)
    for where, image in image_refs(doc):
        if not within(folder / image, [folder]) and not within(folder / image, roots[1:]):
            add(doc.at(where, f"reference image {image!r} is outside the images folder "
                              f"{folder}"))


def missing_images(doc: Doc, add: Add) -> None:
    """Reference images the profile names but its images folder lacks, or holds as something
    a run cannot read (a FIFO, a device, a huge file): the host reads each and sends it."""
    folder = images_dir(doc)
    for at, name in image_refs(doc):
        target = folder / name
        if not within(target, [folder]):
            continue  # check_profile said so
        try:
            st = target.stat()
        except (OSError, ValueError):
            add(doc.at(at, f"reference image {name!r} not found in {folder}"))
            continue
        if not stat.S_ISREG(st.st_mode):
            add(doc.at(at, f"reference image {name!r} in {folder} is not a regular file"))
        elif st.st_size > MAX_IMAGE_BYTES:
            add(doc.at(at, f"reference image {name!r} is {st.st_size} bytes; images over "
                           f"{MAX_IMAGE_BYTES} bytes are refused"))
