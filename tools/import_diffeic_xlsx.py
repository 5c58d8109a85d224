"""Regenerate the published curves taken from DiffEIC's spreadsheet: the Kodak and CLIC2020
numbers of DiffEIC, RDEIC (-2 and -5), PerCo and low-rate HiFiC in huai-chang/DiffEIC's
``indicators/results.xlsx``, written as ``mrtlab/eval/reference/<dataset>_<method>.json``.

    git --git-dir DiffEIC.git show COMMIT:indicators/results.xlsx > results.xlsx
    python tools/import_diffeic_xlsx.py results.xlsx --commit COMMIT --force

Only numbers stored in cells are copied, unchanged (openpyxl reads them). A block, sheet or
column that is missing or new, or a cell that is not a number, stops the import with one
line: the sheet has changed and its notes below need reading again.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from mrtlab.errors import MrtlabError
from mrtlab.eval.curves import HIGHER_IS_BETTER, REFERENCE_DIR, load

REPO, FILE = "huai-chang/DiffEIC", "indicators/results.xlsx"
# the sheet's column -> mrtlab's key, in the order written
COLUMNS = {"bpp": "bpp", "PSNR": "psnr", "MS-SSIM": "ms-ssim", "SSIM": "ssim", "LPIPS": "lpips",
           "DISTS": "dists", "FID": "fid", "KID": "kid", "NIQE": "niqe"}

COMMON = (
    "Values copied unchanged (the numbers stored in the cells, read with openpyxl by "
    "tools/import_diffeic_xlsx.py, which regenerates this file) from indicators/results.xlsx of "
    "huai-chang/DiffEIC, whose README says 'The quantitative metrics for each method presented in "
    "our paper can be found in result.xlsx' (Li, Zhou, Wei, Ge, Jiang, 'Toward Extreme Image "
    "Compression with Latent Feature Guidance and Diffusion Prior', IEEE TCSVT 2025). Sheet "
    "{sheet!r}, block {block!r}, rows {first}-{last}, row labels {labels} (the sheet's order). "
    "Columns renamed to lower case (MS-SSIM->ms-ssim); SSIM is kept as 'ssim' and NIQE "
    "(no-reference, lower is better) as 'niqe'. The sheet states no protocol: not the image count "
    "or size, any resizing or cropping, how bpp was counted, the LPIPS network, nor how FID/KID "
    "were computed; DiffEIC's paper text could not be read here. "
)
SHEETS = {  # sheet -> (dataset, label, what is known about its images)
    "Kodak": ("kodak", "Kodak", (
        "The Kodak sheet has no FID/KID columns. Its own MS-ILLM rows (quality_1..3) agree with "
        "NeuralCompression's Kodak numbers (kodak_msillm.json) within 0.004 dB PSNR, 0.0001 "
        "MS-SSIM, 0.0001 LPIPS and 0.0004 DISTS, which suggests the 24 full-size images and the "
        "same LPIPS/DISTS conventions; its bpp are 0.0003 higher at every point (about 16 bytes "
        "more per image: a different count of the same bitstreams). ")),
    "CLIC2020": ("clic2020diffeic", "CLIC2020 per DiffEIC", (
        "The sheet 'CLIC2020' names neither the split nor the image count, and its numbers match "
        "neither CLIC2020 set shipped here: its own MS-ILLM quality_1 row reads 0.0413 bpp, "
        "26.42 dB, DISTS 0.114, FID 14.4 where NeuralCompression's CLIC2020 test numbers for the "
        "same model (clic2020test_msillm.json) read 0.0346 bpp, 27.88 dB, DISTS 0.086, FID 6.3; "
        "its VTM rows lie 1.0-1.3 dB below VTM-17.0 on the 41-image professional validation set "
        "(clic2020_vtm.json) at equal bpp. The images or their preprocessing (resizing?) differ, "
        "so these curves form their own dataset 'clic2020diffeic': compare them with each other, "
        "not with the clic2020test_* or clic2020_* curves. KID is the raw value (not x1000). ")),
}
METHODS = {  # block title -> (method in the file name, name, notes)
    "DiffEIC": ("diffeic", "DiffEIC", (
        "DiffEIC's five released models (its README lists them at 0.12, 0.09, 0.06, 0.04 and "
        "0.02 bpp). LPIPS, MS-SSIM and DISTS are given to 4 decimals.")),
    "RDEIC-2": ("rdeic-2", "RDEIC-2", (
        "RDEIC (Li, Zhou, Wei, Ge, Mian, 'Diffusion-based Extreme Image Compression with "
        "Compressed Feature Initialization', arXiv 2410.02640). The sheet has two RDEIC blocks, "
        "'RDEIC-2' and 'RDEIC-5', and does not explain the suffix (presumably the number of "
        "denoising steps); both are shipped. The file's first version (commit 893d85f) had one "
        "'RDEIC' block whose rows 1-2 equal RDEIC-2's and rows 3-5 RDEIC-5's.")),
    "RDEIC-5": ("rdeic-5", "RDEIC-5", None),  # same notes as RDEIC-2
    "PerCo": ("perco", "PerCo", (
        "PerCo (Careil, Muckley, Verbeek, Lathuiliere, ICLR 2024, 'Towards image compression "
        "with perfect realism at ultra-low bitrates'), two points. PerCo has no official code; "
        "the sheet does not say how its reconstructions were obtained. Its bpp are nearly the "
        "same on the Kodak, Tecnick and CLIC2020 sheets (0.1257-0.1261 and 0.0320-0.0324).")),
    "HiFiC": ("hific-lowrate", "HiFiC low-rate", (
        "HiFiC (Mentzer et al., NeurIPS 2020), rows 'high', 'med', 'low' at 0.049-0.149 bpp on "
        "Kodak: all below the released hific-lo (0.18 bpp on Kodak), so these are not the "
        "released models of kodak_hific.json / clic2020test_hific.json (tensorflow/compression's "
        "data.csv) but HiFiC models for lower rates whose origin the sheet does not state; "
        "shipped as a curve of their own, not merged with kodak_hific.")),
}


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def read_blocks(ws) -> dict[str, list]:
    """Block title -> its data rows ``(row number, label, {column: cell})``. A block starts at a
    row whose only value is a title in column A; the header row (with ``bpp``) names the columns
    of every block below it."""
    blocks, header, title = {}, None, None
    for row in ws.iter_rows():
        cells = [c for c in row if c.value is not None]
        if not cells:
            continue
        if any(c.value == "bpp" for c in cells):
            header = {c.column: c.value for c in cells if c.column > 1}
        elif len(cells) == 1 and cells[0].column == 1 and isinstance(cells[0].value, str):
            title = cells[0].value
            if title in blocks:
                raise MrtlabError(f"sheet {ws.title!r}: two blocks named {title!r}")
            blocks[title] = []
        elif header is None or title is None:
            raise MrtlabError(f"sheet {ws.title!r}: row {cells[0].row} comes before a header and block title")
        else:
            by_column = {c.column: c for c in row}
            blocks[title].append((row[0].row, row[0].value,
                                  {name: by_column.get(col) for col, name in header.items()}))
    return blocks


def monotone(bpp: list[float], values: list[float], higher_is_better: bool) -> bool:
    ys = [v for _, v in sorted(zip(bpp, values))]
    return all((b > a) if higher_is_better else (b < a) for a, b in zip(ys, ys[1:]))


def curve(sheet: str, block: str, rows: list, commit: str, sha256: str) -> tuple[str, dict]:
    dataset, label, data_note = SHEETS[sheet]
    method, name, note = METHODS[block]
    note = note or METHODS["RDEIC-2"][2]
    unknown = {k for _, _, cells in rows for k in cells} - set(COLUMNS)
    if unknown:
        raise MrtlabError(f"sheet {sheet!r}, block {block!r}: columns {sorted(unknown)} are new")
    results = {}
    for column, key in COLUMNS.items():
        cells = [cells.get(column) for _, _, cells in rows]
        if all(c is None for c in cells):
            continue
        for c, (r, _, _) in zip(cells, rows):
            if c is None or not is_number(c.value):
                where = c.coordinate if c is not None else f"row {r}"
                raise MrtlabError(f"sheet {sheet!r}, block {block!r}, {column} at {where}: "
                                  f"{None if c is None else c.value!r} is not a number")
        results[key] = [c.value for c in cells]
    flat = [k for k in results if k != "bpp" and k in HIGHER_IS_BETTER
            and not monotone(results["bpp"], results[k], HIGHER_IS_BETTER[k])]
    shape = (f" Quality does not improve strictly with rate for {', '.join(flat)}: mrtlab bdrate "
             "refuses a BD-rate in that metric for this curve." if flat else "")
    labels = ", ".join(str(lab) for _, lab, _ in rows)
    notes = (COMMON.format(sheet=sheet, block=block, first=rows[0][0], last=rows[-1][0], labels=labels)
             + data_note + note + shape)
    return f"{dataset}_{method}", {
        "name": f"{name} ({label})",
        "description": (f"{name}, {len(rows)} rate points, sheet {sheet!r} of {FILE} in {REPO}, "
                        "as tabulated by DiffEIC's authors"),
        "dataset": dataset,
        "source": {"url": f"https://github.com/{REPO}/blob/{commit}/{FILE}", "commit": commit,
                   "sha256": sha256, "notes": notes},
        "results": results,
    }


def dumps(data: dict) -> str:
    """Like the other reference files: one line per metric."""
    head = json.dumps({k: v for k, v in data.items() if k != "results"}, indent=2, ensure_ascii=False)
    lines = ",\n".join(f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in data["results"].items())
    return head[:-2] + ',\n  "results": {\n' + lines + "\n  }\n}\n"


def curves(xlsx: Path, commit: str) -> dict[str, dict]:
    """File stem -> contents, for every sheet and block named above."""
    import openpyxl

    sha256 = hashlib.sha256(xlsx.read_bytes()).hexdigest()
    book = openpyxl.load_workbook(xlsx, data_only=True)
    out = {}
    for sheet in SHEETS:
        if sheet not in book.sheetnames:
            raise MrtlabError(f"{xlsx}: no sheet {sheet!r} (it has {', '.join(book.sheetnames)})")
        blocks = read_blocks(book[sheet])
        for block in METHODS:
            if block not in blocks:
                raise MrtlabError(f"{xlsx}, sheet {sheet!r}: no block {block!r} (it has {', '.join(blocks)})")
            stem, data = curve(sheet, block, blocks[block], commit, sha256)
            out[stem] = data
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("xlsx", type=Path, help=f"{FILE} of {REPO}")
    ap.add_argument("--commit", required=True, help=f"the {REPO} commit the file was taken from (40 hex)")
    ap.add_argument("--out", type=Path, default=REFERENCE_DIR, help="folder (default: the shipped curves)")
    ap.add_argument("--force", action="store_true", help="replace existing files")
    args = ap.parse_args(argv)
    try:
        if len(args.commit) != 40 or not all(ch in "0123456789abcdef" for ch in args.commit):
            raise MrtlabError(f"--commit {args.commit}: give the full 40-hex commit")
        if not args.xlsx.is_file():
            raise MrtlabError(f"{args.xlsx}: no such file")
        files = {args.out / f"{stem}.json": data for stem, data in curves(args.xlsx, args.commit).items()}
        existing = [str(p) for p in files if p.exists()]
        if existing and not args.force:
            raise MrtlabError(f"{', '.join(existing)} exist; pass --force to replace them")
        args.out.mkdir(parents=True, exist_ok=True)
        for path, data in files.items():
            path.write_text(dumps(data))
            c = load(path)
            print(f"{path}: {len(c.bpp)} points, {', '.join(k for k in c.metrics if k != 'bpp')}")
    except MrtlabError as e:
        sys.exit(f"import_diffeic_xlsx: error: {e}")


if __name__ == "__main__":
    main()
