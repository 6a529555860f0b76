"""Finding a reference image on the screen with numpy alone, where OpenCV is not installed.

pyautogui's ``locate(..., confidence=)`` needs OpenCV (``cv2.matchTemplate`` with
``TM_CCOEFF_NORMED``). A VM built from Debian's packages has numpy but no small OpenCV
(Debian's pulls in VTK and Qt), so the agent falls back to this: the same score —
the normalised correlation of the mean-removed needle and window, summed over the RGB
channels — computed with FFTs and window sums, and the first position (row by row) whose
score reaches ``confidence``, as pyscreeze returns it.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from PIL import Image


class Box(NamedTuple):
    left: int
    top: int
    width: int
    height: int


def _window_sums(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Sum of every h-by-w window of ``a`` (2-D), by an integral image."""
    s = np.zeros((a.shape[0] + 1, a.shape[1] + 1))
    s[1:, 1:] = a.cumsum(0).cumsum(1)
    return s[h:, w:] - s[:-h, w:] - s[h:, :-w] + s[:-h, :-w]


@functools.lru_cache(maxsize=32)
def _needle(data: bytes, size: tuple[int, int], fshape: tuple[int, int],
            ) -> tuple[tuple[np.ndarray, ...], float]:
    """The mean-removed needle's spectra per channel and its energy (the same needle is
    searched for on screen after screen: computed once per screen size)."""
    t = np.frombuffer(data, dtype=np.uint8).reshape(size[1], size[0], 3).astype(np.float64)
    spectra, energy = [], 0.0
    for c in range(3):
        tc = t[:, :, c] - t[:, :, c].mean()
        spectra.append(np.conj(np.fft.rfft2(tc, fshape)))
        energy += float((tc * tc).sum())
    return tuple(spectra), energy


def scores(needle: Image.Image, haystack: Image.Image) -> np.ndarray:
    """TM_CCOEFF_NORMED of ``needle`` at every position of ``haystack`` (RGB)."""
    rgb = needle.convert("RGB")
    img = np.asarray(haystack.convert("RGB"), dtype=np.float64)
    w, h = rgb.size
    rows, cols = img.shape[0] - h + 1, img.shape[1] - w + 1
    if rows <= 0 or cols <= 0:
        return np.zeros((0, 0))
    n = h * w
    shape = (img.shape[0] + h - 1, img.shape[1] + w - 1)
    fshape = (int(2 ** np.ceil(np.log2(shape[0]))), int(2 ** np.ceil(np.log2(shape[1]))))
    spectra, t_energy = _needle(rgb.tobytes(), rgb.size, fshape)
    num = np.zeros((rows, cols))
    i_energy = np.zeros((rows, cols))
    for c in range(3):
        ic = img[:, :, c]
        # (Σ of the mean-removed needle is 0: the window's mean drops out of the numerator)
        num += np.fft.irfft2(np.fft.rfft2(ic, fshape) * spectra[c], fshape)[:rows, :cols]
        sums = _window_sums(ic, h, w)
        i_energy += _window_sums(ic * ic, h, w) - sums * sums / n
    denom = np.sqrt(np.maximum(i_energy, 0.0) * t_energy)
    out = np.zeros((rows, cols))
    ok = denom > 1e-6 * max(t_energy, 1.0)
    out[ok] = num[ok] / denom[ok]
    return np.clip(out, -1.0, 1.0)


def locate(needle: Image.Image, haystack: Image.Image, confidence: float) -> Box | None:
    """The first position (row by row) where ``needle`` scores ``confidence`` or more."""
    s = scores(needle, haystack)
    hits = np.argwhere(s >= confidence)
    if not len(hits):
        return None
    top, left = (int(x) for x in hits[0])
    return Box(left, top, needle.width, needle.height)
