"""Reading any image the user gives as 8-bit RGB, as a photo tool reads it, and writing PNGs."""
from __future__ import annotations

import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import MrtlabError
from ..files import write_atomic
from .container import MAX_PIXELS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")

Image.MAX_IMAGE_PIXELS = None  # our own limit below, with our own message


def load_rgb(path: str | Path) -> tuple[np.ndarray, str | None]:
    """``HxWx3`` uint8 and a one-line notice of what was done to get it (conversion, EXIF
    rotation, frames left out), or ``None``."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise MrtlabError(f"{path}: no such file") from None
    except OSError as e:
        raise MrtlabError(f"{path}: cannot read ({e.strerror})") from None
    if stat.S_ISDIR(mode):
        raise MrtlabError(f"{path}: is a folder, not an image")
    if not stat.S_ISREG(mode):  # a FIFO or a device would block or never end
        raise MrtlabError(f"{path}: not a regular file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                check_size(im.size, path)
                return to_rgb(im)
    except MrtlabError:
        raise
    except UnidentifiedImageError:
        raise MrtlabError(f"{path}: not an image (or an unsupported format)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise MrtlabError(f"{path}: corrupt or truncated image ({e})") from None


def check_size(size: tuple[int, int], what) -> None:
    w, h = size
    if w * h > MAX_PIXELS:
        raise MrtlabError(f"{what}: image too large ({w}×{h} = {w * h / 1e6:.0f} MP; "
                          f"the limit is {MAX_PIXELS / 1e6:.0f} MP)")
    if w == 0 or h == 0:
        raise MrtlabError(f"{what}: empty image ({w}×{h})")


def to_rgb(im: Image.Image) -> tuple[np.ndarray, str | None]:
    """A PIL image → ``HxWx3`` uint8 and what was done (``None``: nothing)."""
    notes = []
    if getattr(im, "n_frames", 1) > 1:
        notes.append(f"the first of its {im.n_frames} frames taken")
        im.seek(0)
    bits16 = any(";16" in str(t.args) for t in (getattr(im, "tile", None) or ()))  # the raw mode, before loading
    im.load()
    orientation = _orientation(im)
    if orientation not in (None, 1):
        im = ImageOps.exif_transpose(im)
        notes.append(f"turned upright (EXIF orientation {orientation})")
    mode = im.mode
    if mode == "RGB":
        rgb = np.asarray(im)
        if bits16:
            notes.append("converted 16-bit RGB to 8 bits per channel")
    elif mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im).astype(np.float64)
        if mode == "F" and np.nanmax(a, initial=0.0) <= 1.0:
            peak, what = 1.0, "floating-point grayscale in 0…1"
        else:
            peak = 65535.0 if mode.startswith("I;16") or np.nanmax(a, initial=0.0) > 255 else 255.0
            what = "high bit depth grayscale"
        a = np.clip(np.round(np.nan_to_num(a) / peak * 255), 0, 255).astype(np.uint8)
        rgb = np.repeat(a[:, :, None], 3, axis=2)
        notes.append(f"converted {mode} ({what}) to 8-bit RGB")
    elif mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        rgb = np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
        notes.append(f"converted {mode} to RGB (transparency composited on white)")
    else:
        rgb = np.asarray(im.convert("RGB"))
        notes.append(f"converted {mode} to RGB")
    return np.ascontiguousarray(rgb), "; ".join(notes) or None


def _orientation(im: Image.Image) -> int | None:
    try:
        return im.getexif().get(0x0112)
    except Exception:  # a damaged EXIF block: the pixels are still the image
        return None


def as_rgb(image, what: str = "image") -> tuple[np.ndarray, str | None]:
    """A path, a PIL image or an ``HxWx3`` uint8 array → ``HxWx3`` uint8 and a notice."""
    if isinstance(image, (str, Path)):
        return load_rgb(image)
    if isinstance(image, Image.Image):
        check_size(image.size, what)
        return to_rgb(image)
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise MrtlabError(f"{what}: expected an H×W×3 uint8 array, got {a.dtype} {list(a.shape)}")
    check_size((a.shape[1], a.shape[0]), what)
    return np.ascontiguousarray(a), None


def save_png(rgb: np.ndarray, path: Path, force: bool = False) -> None:
    """Write ``HxWx3`` uint8 as a PNG, whole or not at all (``files.write_atomic``)."""
    write_atomic(path, lambda f: Image.fromarray(rgb).save(f, format="PNG"), force)
