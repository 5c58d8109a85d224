"""RD plots (matplotlib, Agg: no display needed): one panel per metric, bpp on x; published
reference curves dashed, evaluated ones solid."""
from __future__ import annotations

from pathlib import Path

from ..errors import MrtlabError, need
from ..files import write_atomic
from .curves import HIGHER_IS_BETTER, Curve

ORDER = ("psnr", "lowpass-psnr", "ms-ssim", "lpips", "dists", "fid", "kid")
LABELS = {"psnr": "PSNR (dB) ↑", "lowpass-psnr": "low-pass PSNR (dB, ÷16) ↑",
          "ms-ssim": "MS-SSIM ↑", "lpips": "LPIPS ↓", "dists": "DISTS ↓",
          "fid": "FID (patches) ↓", "kid": "KID (patches) ↓"}


def plot(curves: list[Curve], out: str | Path, metrics: list[str] | None = None,
         title: str | None = None, logx: bool = False, max_bpp: float | None = None) -> Path:
    """One panel per metric; ``max_bpp`` keeps only the points at or below that rate (so
    published curves that reach several bpp do not squeeze the extreme-rate range)."""
    need("matplotlib").use("Agg")
    import matplotlib.pyplot as plt

    if not curves:
        raise MrtlabError("nothing to plot: give results files or --reference DATASET")
    metrics = metrics or [m for m in ORDER if any(c.has(m) for c in curves)]
    for m in metrics:
        if not any(c.has(m) for c in curves):
            raise MrtlabError(f"no curve has {m!r} values")
    out = Path(out)
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise MrtlabError(f"{out}: the plot is written as .png, .svg or .pdf")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics) + 2.2, 4), squeeze=False)
    colors = plt.cm.tab20.colors if len(curves) > 10 else plt.cm.tab10.colors
    handles = {}
    for ax, m in zip(axes[0], metrics):
        drawn = 0
        for color, c in zip(colors * (len(curves) // len(colors) + 1), curves):
            pts = c.points(m, max_bpp) if c.has(m) else []
            if pts:
                drawn += 1
                style = "--" if c.source else "-"
                handles[c.name], = ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o",
                                           ms=4, color=color, label=c.name)
        if not drawn:
            plt.close(fig)
            raise MrtlabError(f"no {m} point at ≤ {max_bpp} bpp to draw")
        ax.set_xlabel("bpp (whole file)")
        ax.set_ylabel(LABELS.get(m, m) if m in HIGHER_IS_BETTER else m)
        if logx:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
    fig.legend(handles.values(), handles.keys(), fontsize=7, loc="center right")  # one, beside the panels
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1 - 2.0 / fig.get_figwidth(), 1))
    fmt = out.suffix.lstrip(".").lower() or "png"
    if fmt not in fig.canvas.get_supported_filetypes():
        plt.close(fig)
        raise MrtlabError(f"{out}: cannot draw a .{fmt} file (use .png, .svg or .pdf)")
    try:
        write_atomic(out, lambda f: fig.savefig(f, dpi=110, format=fmt), force=True)  # checked before
    finally:
        plt.close(fig)
    return out
