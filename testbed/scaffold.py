"""``testbed new scenario NAME --from EXISTING`` and ``testbed new app NAME``: documented
starting files, so that a new client version or a new app is a file, not code.

The walkthrough that uses them is ``docs/adding-a-client.md``.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from testbed._errors import ScenarioError

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")

APP_TEMPLATE = """\
# App profile `{name}`: how to drive this app with pyautogui, one named action per thing a
# user does. Written by `testbed new app {name}`; see docs/adding-a-client.md.
#
# Steps (testbed/agent/steps.py): run, click_image (confidence, offset [dx, dy], timeout),
# wait_image (timeout), absent_image (timeout), wait_window (a title; timeout: raises the
# window and gives it the keyboard), type (secret: true for passwords; non-ASCII
# text is pasted through the clipboard), press, hotkey, screenshot, sleep.
# Placeholders: {{user}} {{password}} {{canary}} {{python}} {{build}}, every field of the
# scenario step ({{to}}, {{text}}, ...) and {{to_user}}: the account name of the variant in `to`.
#
# Reference images live in {name}/ beside this file. Take them on the guest itself, at the
# resolution and DPI the lab uses (100 %, 1024x768 for the embedded lab), crop each widget
# tightly, and keep text in them: they are matched with confidence 0.9 by default.
app: {name}
description: TODO one line on the app and the build it drives
images: {name}
# How the agent starts the app in the guest's desktop session. For an installed Windows
# build this is the path of its executable, e.g. ["C:/Program Files/Skype/Phone/Skype.exe"].
# It may use the fields of the step that launches it, e.g. ["firefox-esr", "{{url}}"].
launch: ["TODO/path/to/the/app"]
# The trust store the app reads: system (OpenSSL, GnuTLS), nss (~/.pki/nssdb), java, or own
# (its own CA list: the scenario then says `tls: passthrough` or expects `tls: untrusted`).
# An NSS app that keeps its database in its own profile folder names it (relative to the
# home), and the lab's CAs go there too, e.g. Firefox: nss_db: .mozilla/firefox/testbed
trust: system
actions:
  launch:
    - {{run: launch}}
    - {{wait_image: signin-button.png, timeout: 60}}
    - {{screenshot: launch}}
  login:
    - {{click_image: label-user.png, offset: [170, 0]}}    # the field right of its label
    - {{type: "{{user}}"}}
    - {{click_image: label-password.png, offset: [170, 0]}}
    - {{type: "{{password}}", secret: true}}
    - {{click_image: signin-button.png}}
    - {{wait_image: status-online.png, timeout: 60}}
    - {{screenshot: login}}
  about:                      # the window that names the build (the seed's About screenshots)
    - {{click_image: about-button.png}}
    - {{wait_image: about-close.png, timeout: 10}}
    - {{screenshot: about}}
    - {{click_image: about-close.png}}
  chat_send:
    - {{click_image: label-to.png, offset: [150, 0]}}
    - {{type: "{{to_user}}"}}
    - {{click_image: label-message.png, offset: [200, 0]}}
    - {{type: "{{text}}"}}
    - {{click_image: send-button.png}}
    - {{wait_image: status-sent.png, timeout: 15}}
    - {{screenshot: chat_send}}
  chat_wait:
    - {{wait_image: status-received.png, timeout: 20}}
    - {{screenshot: chat_wait}}
  chat_absent:
    - {{absent_image: status-received.png, timeout: 5}}
    - {{screenshot: chat_absent}}
"""

IMAGES_README = """\
# Reference images of app profile `{name}`

One PNG per widget the profile clicks on or waits for: {images}.
Take them on a guest at the lab's resolution and DPI and crop tightly. For the lab's reference
client, `python -m testbed.lab.refclient.reference_images DIR` regenerates them.
"""


def _check_name(kind: str, name: str) -> None:
    if not NAME.match(name):
        raise ScenarioError(f"{kind} name {name!r}: use lower-case letters, digits, '.', '_', '-'")


def new_scenario(name: str, source: str, folder: Path, force: bool = False) -> Path:
    """Copy scenario ``source`` (a name in ``folder`` or a path) to ``folder/NAME.yaml`` with
    its name changed and a note on what to edit."""
    _check_name("scenario", name)
    src = Path(source) if source.endswith((".yaml", ".yml")) else folder / f"{source}.yaml"
    if not src.is_file():
        raise ScenarioError(f"{src}: no such scenario to start from")
    out = folder / f"{name}.yaml"
    if out.exists() and not force:
        raise ScenarioError(f"{out}: exists already (use --force to overwrite)")
    text = src.read_text(encoding="utf-8")
    text, n = re.subn(r"(?m)^scenario:\s*\S+", f"scenario: {name}", text, count=1)
    if not n:
        raise ScenarioError(f"{src}: not a scenario (no `scenario:` key)")
    note = (f"# Scenario `{name}`, started from {src.name} by `testbed new scenario`.\n"
            "# Edit: clients (one variant per build: app profile, build profile or installer,\n"
            "# account), sessions (what the users do), expectations (what you claim).\n"
            "# Check it: testbed validate " + str(out) + "\n")
    out.write_text(note + text, encoding="utf-8")
    return out


def new_app(name: str, folder: Path, force: bool = False) -> Path:
    """Write ``folder/apps/NAME.yaml`` (every action, documented) and its images folder."""
    _check_name("app", name)
    out = folder / "apps" / f"{name}.yaml"
    if out.exists() and not force:
        raise ScenarioError(f"{out}: exists already (use --force to overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    text = APP_TEMPLATE.format(name=name)
    out.write_text(text, encoding="utf-8")
    images = sorted(set(re.findall(r"([a-z-]+\.png)", text)))
    (out.parent / name).mkdir(exist_ok=True)
    (out.parent / name / "README.md").write_text(
        IMAGES_README.format(name=name, images=", ".join(images)), encoding="utf-8")
    return out


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    new = sub.add_parser("new", help="write documented starting files for a scenario or app",
                         description="Start a new scenario from an existing one, or a new app "
                         "profile. Walkthrough: docs/adding-a-client.md.")
    kinds = new.add_subparsers(dest="new_kind", required=True, metavar="KIND")
    s = kinds.add_parser("scenario", help="copy a scenario under a new name")
    s.add_argument("name")
    s.add_argument("--from", dest="source", default="skype-2013-lab",
                   help="scenario to start from (name in --folder, or a path; "
                   "default: %(default)s)")
    s.add_argument("--folder", type=Path, default=Path("scenarios"))
    s.add_argument("--force", action="store_true", help="overwrite an existing file")
    s.set_defaults(func=run)
    a = kinds.add_parser("app", help="write an app profile with every action, documented")
    a.add_argument("name")
    a.add_argument("--folder", type=Path, default=Path("scenarios"))
    a.add_argument("--force", action="store_true", help="overwrite an existing file")
    a.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.new_kind == "scenario":
        out = new_scenario(args.name, args.source, args.folder, args.force)
        print(f"wrote {out}\nnext: edit it, then `testbed validate {out}`")
    else:
        out = new_app(args.name, args.folder, args.force)
        print(f"wrote {out} and {out.parent / args.name}/\n"
              f"next: set `launch`, take the reference images, then `testbed validate {out}`")
    return 0
