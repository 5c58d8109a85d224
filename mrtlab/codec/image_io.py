"""Reading any image the user gives, as 8-bit RGB, and writing PNGs without clobbering."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import MrtlabError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
MAX_PIXELS = 50_000_000  # about 8K×6K; beyond this the CPU codec would need > 20 GB

Image.MAX_IMAGE_PIXELS = None  # our own limit below, with our own message


def load_rgb(path: str | Path) -> tuple[np.ndarray, str | None]:
    """``HxWx3`` uint8 and a one-line notice when the image had to be converted."""
    path = Path(path)
    if not path.exists():
        raise MrtlabError(f"{path}: no such file")
    if path.is_dir():
        raise MrtlabError(f"{path}: is a folder, not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise MrtlabError(f"{path}: image too large ({w}×{h} = {w * h / 1e6:.0f} MP; "
                                      f"the limit is {MAX_PIXELS / 1e6:.0f} MP)")
                if w == 0 or h == 0:
                    raise MrtlabError(f"{path}: empty image ({w}×{h})")
                im.load()
                return to_rgb(im)
    except MrtlabError:
        raise
    except UnidentifiedImageError:
        raise MrtlabError(f"{path}: not an image (or an unsupported format)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise MrtlabError(f"{path}: corrupt or truncated image ({e})") from None


def to_rgb(im: Image.Image) -> tuple[np.ndarray, str | None]:
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im), None
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im).astype(np.float64)
        peak = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        a = np.clip(np.round(a / peak * 255), 0, 255).astype(np.uint8)
        return np.repeat(a[:, :, None], 3, axis=2), f"converted {mode} (high bit depth grayscale) to 8-bit RGB"
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        rgb = Image.alpha_composite(white, rgba).convert("RGB")
        return np.asarray(rgb), f"converted {mode} to RGB (transparency composited on white)"
    return np.asarray(im.convert("RGB")), f"converted {mode} to RGB"


def check_writable(path: Path, force: bool) -> None:
    """Before the work: ``path`` may be written (its missing folders are made when it is)."""
    if path.exists() and not force:
        raise MrtlabError(f"{path} exists (use --force to overwrite)")
    folder = next(p for p in Path(path).absolute().parents if p.exists())
    if not folder.is_dir():
        raise MrtlabError(f"cannot write {path}: {folder} is a file, not a folder")


def save_png(rgb: np.ndarray, path: Path, force: bool = False) -> None:
    check_writable(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, format="PNG")
