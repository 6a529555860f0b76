"""The numpy matcher (testbed.agent.match) against OpenCV's TM_CCOEFF_NORMED and pyautogui's
locate, on the reference client's real reference images placed on generated screens."""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
import pyscreeze
import pytest
from PIL import Image

from testbed.agent import match

ROOT = Path(__file__).resolve().parents[2]
IMAGES = sorted((ROOT / "scenarios" / "apps" / "refclient").glob("*.png")) + sorted(
    (ROOT / "scenarios" / "apps" / "refclient-zh").glob("*.png"))


def screen_with(needle: Image.Image, at: tuple[int, int], seed: int) -> Image.Image:
    """A 320x200 'desktop': grey panels and noise, the needle pasted at ``at``."""
    rng = random.Random(seed)
    screen = Image.new("RGB", (320, 200), (rng.randrange(256),) * 3)
    for _ in range(12):
        x, y = rng.randrange(300), rng.randrange(180)
        screen.paste((rng.randrange(256), rng.randrange(256), rng.randrange(256)),
                     (x, y, x + rng.randrange(5, 80), y + rng.randrange(5, 40)))
    screen.paste(needle.convert("RGB"), at)
    return screen


def cv2_scores(needle: Image.Image, haystack: Image.Image) -> np.ndarray:
    t = cv2.cvtColor(np.asarray(needle.convert("RGB")), cv2.COLOR_RGB2BGR)
    i = cv2.cvtColor(np.asarray(haystack.convert("RGB")), cv2.COLOR_RGB2BGR)
    return cv2.matchTemplate(i, t, cv2.TM_CCOEFF_NORMED)


@pytest.mark.parametrize("path", IMAGES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_scores_are_opencvs(path: Path) -> None:
    needle = Image.open(path)
    if needle.width > 300 or needle.height > 180:
        pytest.skip("larger than the generated screen")
    screen = screen_with(needle, (17, 23), seed=len(path.name))
    ours, theirs = match.scores(needle, screen), cv2_scores(needle, screen)
    assert ours.shape == theirs.shape
    strong = theirs > 0.5  # where it matters; cv2's float32 sums differ in flat noise
    assert np.allclose(ours[strong], theirs[strong], atol=2e-3), (
        f"{path.name}: largest difference {np.abs(ours - theirs)[strong].max():.4f}")
    assert ours[23, 17] > 0.999, f"{path.name} does not score 1 where it was pasted"


@pytest.mark.parametrize("path", IMAGES[:6], ids=lambda p: p.name)
@pytest.mark.parametrize("at", [(0, 0), (40, 100), (150, 5)])
def test_locate_finds_what_pyautogui_finds(path: Path, at: tuple[int, int]) -> None:
    needle = Image.open(path)
    if needle.width + at[0] > 320 or needle.height + at[1] > 200:
        pytest.skip("does not fit there")
    screen = screen_with(needle, at, seed=at[0] * 7 + at[1])
    box = match.locate(needle, screen, 0.9)
    theirs = pyscreeze.locate(needle, screen, confidence=0.9)
    assert box is not None, f"{path.name} not found at {at}"
    assert (box.left, box.top, box.width, box.height) == tuple(theirs)


@pytest.mark.parametrize("size", [(1, 1), (400, 10), (10, 300)])
def test_a_needle_larger_than_the_screen_is_not_found(size: tuple[int, int]) -> None:
    screen = Image.new("RGB", (320, 200), (9, 9, 9))
    needle = Image.new("RGB", size, (200, 10, 10))
    if size == (1, 1):  # a flat needle on a flat screen has no correlation: never a match
        assert match.locate(needle, screen, 0.9) is None
    else:
        assert match.scores(needle, screen).size == 0
        assert match.locate(needle, screen, 0.9) is None


def test_an_absent_image_is_not_found() -> None:
    needle = Image.open(IMAGES[0])
    screen = screen_with(Image.new("RGB", (1, 1)), (0, 0), seed=3)
    assert match.locate(needle, screen, 0.9) is None
