"""Screenshots as small inline images (data URIs), so the report is one file."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Pillow loads with the first screenshot: ~14 ms saved when there is none
    from PIL import Image

MAX_WIDTH = 480


def crop_dark_border(img: Image.Image, threshold: int = 12, margin: int = 6) -> Image.Image:
    """``img`` without a uniform black border (an empty X display around a small window);
    unchanged when there is none worth removing."""
    bbox = img.convert("L").point(lambda p: 255 if p > threshold else 0).getbbox()
    if bbox is None:
        return img
    left, top, right, bottom = bbox
    if (right - left) * (bottom - top) > 0.85 * img.width * img.height:
        return img
    return img.crop((max(0, left - margin), max(0, top - margin),
                     min(img.width, right + margin), min(img.height, bottom + margin)))


def thumbnail_data_uri(path: Path, max_width: int = MAX_WIDTH, crop: bool = True) -> str | None:
    """``path`` scaled down to at most ``max_width`` pixels wide, as a ``data:`` URI: PNG or
    JPEG, whichever is smaller. With ``crop``, a black border (the empty desktop of a headless
    display) is cut away first. ``None`` when the file cannot be read as an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            img = im.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    if crop:
        img = crop_dark_border(img)
    if img.width > max_width:
        height = max(1, round(img.height * max_width / img.width))
        img = img.resize((max_width, height), Image.Resampling.LANCZOS)
    png, jpeg = io.BytesIO(), io.BytesIO()
    img.save(png, format="PNG", optimize=True)
    img.save(jpeg, format="JPEG", quality=82, optimize=True)
    mime, raw = min((("image/png", png.getvalue()), ("image/jpeg", jpeg.getvalue())),
                    key=lambda t: len(t[1]))
    return f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"
