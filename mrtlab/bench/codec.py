"""``mrtlab bench codec``: real encode/decode times of a model on a folder of images, split
into network / entropy model / entropy coding, with compressai's reference codecs timed in
the same run on the same images.

The split: the network is analysis + quantization (encode) or synthesis (decode); the
range coder's own time is clocked by wrapping ``SymbolEncoder``/``SymbolDecoder``; the
entropy model is the rest of ``compress``/``decompress`` (its networks and tables).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import MrtlabError

COMPRESSAI_VENV = ".venv-compressai/bin/python"  # in the current folder or the project root
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the mrtlab package
REFERENCE_SCRIPT = Path(__file__).with_name("compressai_ref.py")


class CoderClock:
    """Adds up the seconds spent inside the range coder while the ``with`` block runs (a call
    inside a timed call, e.g. the decoder encoding what it decoded again, counts once)."""

    def __init__(self):
        self.seconds, self._depth = 0.0, 0

    def _timed(self, fn):
        def wrapper(*args, **kwargs):
            if self._depth:
                return fn(*args, **kwargs)
            self._depth += 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0
                self._depth -= 1
        return wrapper

    def __enter__(self):
        from ..entropy import base
        self._saved = [(cls, name, getattr(cls, name))
                       for cls, names in ((base.SymbolEncoder, ("__init__", "encode", "data")),
                                          (base.SymbolDecoder, ("__init__", "decode")))
                       for name in names]
        for cls, name, fn in self._saved:
            setattr(cls, name, self._timed(fn))
        return self

    def __exit__(self, *exc):
        for cls, name, fn in self._saved:
            setattr(cls, name, fn)


def bench_image(model, path: Path) -> dict:
    """Encode and decode one image for real; the row of the benchmark."""
    import torch

    from ..codec import container
    from ..codec.image_io import load_rgb

    rgb, _ = load_rgb(path)
    h, w = rgb.shape[:2]
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255
    em = model.entropy_model
    with torch.no_grad():
        t0 = time.perf_counter()
        y, grid = model.encode(x)
        q = model.quantizer(y)
        t1 = time.perf_counter()
        symbols, layout = model.quantizer.symbols(q)[0], model.layout(grid)
        with CoderClock() as enc_clock:
            payload = em.compress(symbols, layout)
        data = container.pack(container.Header(model.fingerprint, h, w, model.latent_tokens), payload)
        t2 = time.perf_counter()
        _, payload = container.unpack(data)
        with CoderClock() as dec_clock:
            decoded = em.decompress(payload, layout)
        t3 = time.perf_counter()
        model.reconstruct(decoded, grid)
        t4 = time.perf_counter()
        estimated = float(em(q, layout).sum())
    if not torch.equal(decoded, symbols):
        raise MrtlabError(f"{path.name}: decoded symbols differ from the encoder's")
    return {"model": model.source, "image": path.name, "encode_s": t2 - t0, "decode_s": t4 - t2,
            "encode_network_s": t1 - t0, "encode_entropy_model_s": t2 - t1 - enc_clock.seconds,
            "encode_entropy_coding_s": enc_clock.seconds,
            "decode_entropy_model_s": t3 - t2 - dec_clock.seconds,
            "decode_entropy_coding_s": dec_clock.seconds, "decode_network_s": t4 - t3,
            "bpp": 8 * len(data) / (h * w), "tokens": layout.tokens,
            "payload_bits": 8 * len(payload), "estimated_bits": estimated,
            "bits_per_token": 8 * len(payload) / layout.tokens,
            "payload_over_estimate": 8 * len(payload) / max(estimated, 1e-9)}


def find_compressai(python: str | None) -> str | None:
    """The interpreter that has compressai: the given one, ``$MRTLAB_COMPRESSAI_PYTHON``,
    ``.venv-compressai`` here or in the project root, or ours."""
    if python and not (Path(python).is_file() or shutil.which(python)):
        raise MrtlabError(f"--compressai-python {python}: no such interpreter")
    for candidate in (python, os.environ.get("MRTLAB_COMPRESSAI_PYTHON"), COMPRESSAI_VENV,
                      str(PROJECT_ROOT / COMPRESSAI_VENV)):
        if candidate and (Path(candidate).is_file() or shutil.which(candidate)):
            return candidate
    probe = subprocess.run([sys.executable, "-c", "import compressai.zoo"], capture_output=True)
    return sys.executable if probe.returncode == 0 else None


def run_compressai(python: str, images: list[Path], threads: int, progress) -> list[dict]:
    """The rows the reference script prints, one JSON object a line; any other line is skipped.
    Its stderr goes to a file (a pipe nobody reads would block a chatty child)."""
    rows = []
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([python, str(REFERENCE_SCRIPT), str(threads), *map(str, images)],
                                stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            for line in proc.stdout:
                try:
                    row = json.loads(line)
                except ValueError:  # a library's print, not a row
                    continue
                row["image"] = Path(row["image"]).name
                rows.append(row)
                progress(f"{row['model']:32s} {row['image']:14s} enc {row['encode_s']:.3f} s  "
                         f"dec {row['decode_s']:.3f} s")
            code = proc.wait()
        finally:  # an exception above (or Ctrl-C) must not leave the child running
            proc.kill()
            proc.wait()
            proc.stdout.close()
        if code:
            err.seek(0)
            last = (err.read().strip().splitlines() or ["(nothing on stderr)"])[-1]
            raise MrtlabError(f"compressai run failed (exit code {code}): {last}")
    return rows


def mean_row(rows: list[dict], model: str) -> dict:
    mine = [r for r in rows if r["model"] == model]
    keys = [k for k, v in mine[0].items() if isinstance(v, (int, float))]
    return {"model": model, "image": "mean", **{k: float(np.mean([r[k] for r in mine])) for k in keys}}


def run(model_names: str | None, data: str, limit: int | None, threads: int,
        compressai: str | None, with_compressai: bool, progress, weights: str | None = None) -> list[dict]:
    """``model_names``: one model, or several separated by commas (each after the first gets
    a ratio row against the first: e.g. ``default,taef2``); ``weights``: the folder of the
    pretrained networks a model wraps."""
    import torch

    from ..eval.run import list_images
    from ..zoo.model_files import load_model

    images = list_images(data)[:limit]
    torch.set_num_threads(threads)
    rows, means = [], []
    for name in (model_names or "").split(",") if model_names else [None]:
        model = load_model(name or None, weights=weights)
        bench_image(model, images[0])  # warm-up: first-call allocations and lazy imports
        mine = []
        for path in images:
            mine.append(bench_image(model, path))
            r = mine[-1]
            progress(f"{r['model']:32s} {r['image']:14s} enc {r['encode_s']:.3f} s  "
                     f"dec {r['decode_s']:.3f} s  {r['bpp']:.4f} bpp")
        means.append(mean_row(mine, model.source))
        rows += [*mine, means[-1]]
    rows += [ratio(m, means[0]) for m in means[1:]]
    if with_compressai:
        python = find_compressai(compressai)
        if python is None:
            raise MrtlabError("compressai is not installed: run `make compressai-venv` (or pass "
                              "--compressai-python, or --no-compressai)")
        theirs = run_compressai(python, images, threads, progress)
        for name in dict.fromkeys(r["model"] for r in theirs):
            ref = mean_row(theirs, name)
            rows += [r for r in theirs if r["model"] == name] + [ref]
            rows += [ratio(ours, ref) for ours in means]
    return rows


def ratio(ours: dict, ref: dict) -> dict:
    """How many times faster ``ours`` encodes and decodes than ``ref`` (means of one run)."""
    return {"model": ours["model"], "image": "ratio", "versus": ref["model"],
            "encode_speedup": ref["encode_s"] / ours["encode_s"],
            "decode_speedup": ref["decode_s"] / ours["decode_s"]}


def table(rows: list[dict]) -> str:
    lines = [f"{'model':32s} {'encode s':>9s} {'decode s':>9s} {'bpp':>8s}   "
             "(means; split net / entropy model / coding)"]
    for r in rows:
        if r["image"] == "mean":
            line = f"{r['model']:32s} {r['encode_s']:9.3f} {r['decode_s']:9.3f} {r['bpp']:8.4f}"
            if "encode_network_s" in r:
                line += (f"   enc {r['encode_network_s']:.3f}/{r['encode_entropy_model_s']:.3f}/"
                         f"{r['encode_entropy_coding_s']:.3f}  dec {r['decode_network_s']:.3f}/"
                         f"{r['decode_entropy_model_s']:.3f}/{r['decode_entropy_coding_s']:.3f}  "
                         f"payload/estimate {r['payload_over_estimate']:.4f}  "
                         f"{r['bits_per_token']:.2f} bits/token")
            lines.append(line)
        elif r["image"] == "ratio":
            lines.append(f"{r['model']} vs {r['versus']}: encode {r['encode_speedup']:.1f}× faster, "
                         f"decode {r['decode_speedup']:.1f}× faster")
    return "\n".join(lines)
