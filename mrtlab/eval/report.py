"""``mrtlab eval --report DIR``: one static HTML page (no CDN, no server) with the RD plots, the
table of means, and per image the original, our reconstruction and JPEG/WebP at the rate
nearest ours, side by side, with synchronised zoomable crops. JPEG/WebP are shown as their
real files, so the browser decodes exactly what was measured."""
from __future__ import annotations

import html
import math
import shutil
from pathlib import Path
from urllib.parse import quote

import numpy as np
from PIL import Image

from ..errors import MrtlabError
from .baselines import PillowCodec
from .curves import Curve
from .run import measure, own_seam_keys

BASELINES = (("jpeg", ".jpg", "JPEG"), ("webp", ".webp", "WebP"))
COLUMNS = ("bpp", "psnr", "lowpass-psnr", "ms-ssim", "lpips", "dists", "fid", "kid", "encoding_time",
           "decoding_time")


class Report:
    def __init__(self, folder: str | Path, force: bool = False):
        """Checks only: under ``accelerate launch`` every process checks before any writes."""
        self.dir = Path(folder)
        if self.dir.exists() and not self.dir.is_dir():
            raise MrtlabError(f"report {self.dir} is a file, not a folder")
        if self.dir.is_dir() and any(self.dir.iterdir()) and not force:
            raise MrtlabError(f"report folder {self.dir} is not empty (use --force to overwrite)")

    def prepare(self) -> None:
        """Empty the pictures of an earlier report (main process, before the eval)."""
        shutil.rmtree(self.dir / "img", ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)

    def add_image(self, path: Path, p: int, rgb, rec, row: dict, perceptual, names) -> dict:
        """Save the pictures of one image at rate point ``p``; JPEG/WebP at the bpp nearest ours."""
        folder = self.dir / "img" / path.name
        folder.mkdir(parents=True, exist_ok=True)
        if p == 0:
            Image.fromarray(rgb).save(folder / "original.png")
        Image.fromarray(rec).save(folder / f"ours_p{p}.png")
        compare = {}
        for fmt, suffix, _ in BASELINES:
            codec = PillowCodec(fmt, [row["bpp"]])
            crow, _, cdata = measure(codec, codec.points[0], rgb, perceptual, names)
            (folder / f"{fmt}_p{p}{suffix}").write_bytes(cdata)
            compare[fmt] = crow
        return compare

    def write(self, summary: dict, rows: list[dict], references: list[Curve] = ()) -> Path:
        from .plot import plot

        n_points = len(summary["points"])
        ours = Curve(summary["name"], summary["results"]["bpp"], summary["results"], "(this run)")
        baselines = [Curve(f"{label} (nearest bpp)", *self._means(rows, fmt, n_points), "(this run)")
                     for fmt, _, label in BASELINES]
        plot([ours, *baselines, *references], self.dir / "rd.png",
             title=f"{summary['name']}: {summary['images']} images", logx=True)
        page = self.dir / "index.html"
        columns = (*COLUMNS[:3], *own_seam_keys(summary), *COLUMNS[3:])
        page.write_text(self._html(summary, rows, ours, baselines, columns), encoding="utf-8")
        return page

    @staticmethod
    def _means(rows, fmt, n_points):
        keys = [k for k in rows[0]["compare"][fmt] if (k in COLUMNS or k.startswith("seam-"))
                and all(r["compare"][fmt].get(k) is not None for r in rows)]
        res = {k: [float(np.mean([r["compare"][fmt][k] for r in rows if r["point"] == p]))
                   for p in range(n_points)] for k in keys}
        return res["bpp"], res

    def _html(self, summary, rows, ours: Curve, baselines: list[Curve], columns) -> str:
        e = html.escape
        head = "".join(f"<th>{e(k)}</th>" for k in columns)
        body = []
        for curve in (ours, *baselines):
            for p, point in enumerate(summary["points"]):
                label = curve.name + (f" ({', '.join(f'{k}={v}' for k, v in point.items())})"
                                      if len(summary["points"]) > 1 or curve is ours else "")
                cells = "".join(f"<td>{_fmt(curve.get(k)[p]) if curve.has(k) else '—'}</td>"
                                for k in columns)
                body.append(f"<tr><th>{e(label)}</th>{cells}</tr>")
        skipped = "".join(f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in summary["skipped"].items())
        sections = [self._image(r) for r in rows]
        return PAGE.format(
            title=e(f"mrtlab eval: {summary['name']}"), description=e(summary["description"]),
            head=head, body="\n".join(body), skipped=f"<ul>{skipped}</ul>" if skipped else "<p>none</p>",
            images="\n".join(sections), script=SCRIPT, style=STYLE)

    @staticmethod
    def _image(r: dict) -> str:
        e, base = html.escape, f"img/{quote(r['image'])}/"
        p = r["point"]
        panels = [("original", f"{base}original.png", "original"),
                  ("ours", f"{base}ours_p{p}.png", f"ours: {_caption(r)}")]
        for fmt, suffix, label in BASELINES:
            c = r["compare"][fmt]
            floor = " — lowest reachable rate" if c["floor"] else ""
            panels.append((fmt, f"{base}{fmt}_p{p}{suffix}", f"{label} q={c['quality']}: {_caption(c)}{floor}"))
        figs = "".join(
            f'<figure><img src="{src}" alt="{e(kind)} {e(r["image"])}" loading="eager">'
            f'<div class="crop" style="background-image:url(\'{src}\')"></div>'
            f"<figcaption>{e(cap)}</figcaption></figure>" for kind, src, cap in panels)
        return (f'<section class="image"><h3>{e(r["image"])} — {r["width"]}×{r["height"]}'
                f'{f" — rate point {p}" if p else ""}</h3><div class="row">{figs}</div></section>')


def _fmt(v) -> str:
    return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.5g}"


def _caption(row: dict) -> str:
    parts = [f"{row['bpp']:.4f} bpp ({row['bytes']} bytes)"]
    if "psnr" in row:
        parts.append(f"PSNR {_fmt(row['psnr'])} dB")
    parts += [f"{k.upper()} {row[k]:.4f}" for k in ("ms-ssim", "lpips", "dists") if row.get(k) is not None]
    parts += [f"seams {k[5:]} px {v:.2f}" for k, v in row.items() if k.startswith("seam-")]
    return ", ".join(parts)


STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:right}
img.plot{max-width:100%}
.row{display:grid;grid-template-columns:repeat(4,1fr);gap:.6em}
figure{margin:0}figure img{width:100%;display:block;cursor:crosshair}
.crop{width:100%;aspect-ratio:1;margin-top:.3em;background-repeat:no-repeat;
      image-rendering:pixelated;border:1px solid #999}
figcaption{font-size:12px}
#status{font-weight:bold}
"""

SCRIPT = """
const zoom = document.getElementById('zoom');
function setCrop(sec, fx, fy) {
  sec.dataset.fx = fx; sec.dataset.fy = fy;
  const z = +zoom.value;
  for (const crop of sec.querySelectorAll('.crop')) {
    const img = crop.parentElement.querySelector('img');
    const w = img.naturalWidth * z, h = img.naturalHeight * z;
    crop.style.backgroundSize = w + 'px ' + h + 'px';
    crop.style.backgroundPosition = (crop.clientWidth / 2 - fx * w) + 'px ' +
                                    (crop.clientHeight / 2 - fy * h) + 'px';
  }
}
for (const sec of document.querySelectorAll('section.image')) {
  for (const img of sec.querySelectorAll('img')) {
    img.addEventListener('mousemove', ev => {
      const r = img.getBoundingClientRect();
      setCrop(sec, (ev.clientX - r.left) / r.width, (ev.clientY - r.top) / r.height);
    });
  }
}
zoom.addEventListener('change', () => {
  for (const sec of document.querySelectorAll('section.image')) setCrop(sec, +sec.dataset.fx, +sec.dataset.fy);
});
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0));
  document.body.dataset.loaded = bad.length ? 'missing' : 'all';
  document.getElementById('status').textContent = bad.length
    ? 'missing images: ' + bad.map(i => i.getAttribute('src')).join(', ')
    : 'all ' + imgs.length + ' images loaded';
  for (const sec of document.querySelectorAll('section.image')) setCrop(sec, 0.5, 0.5);
});
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{style}</style></head>
<body data-loaded="pending">
<h1>{title}</h1>
<p>{description}</p>
<p id="status">loading images…</p>
<h2>Rate–distortion</h2>
<img class="plot" src="rd.png" alt="rate-distortion curves">
<h2>Means</h2>
<table><tr><th></th>{head}</tr>
{body}
</table>
<h2>Skipped metrics</h2>
{skipped}
<h2>Images</h2>
<p>Move the mouse over any picture: the crops below all four follow. Zoom
<select id="zoom"><option>2</option><option selected>4</option><option>8</option></select>×</p>
{images}
<script>{script}</script>
</body></html>
"""
