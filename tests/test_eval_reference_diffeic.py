"""The curves copied from DiffEIC's spreadsheet (``indicators/results.xlsx`` of huai-chang/DiffEIC):
each shipped file loads, has the metrics it claims and the values of cells read by hand; the
tool that writes them copies cells unchanged and stops at anything that is not a number."""
import json
import runpy
from pathlib import Path

import pytest

from mrtlab.eval.curves import datasets, load, reference_curves, references

from .test_cli import run

TOOL = Path(__file__).resolve().parents[1] / "tools" / "import_diffeic_xlsx.py"
COMMIT = "c689ca7f88f8d4a57d82981afa3657482f73dc35"
METHODS = ("diffeic", "rdeic-2", "rdeic-5", "perco", "hific-lowrate")
KODAK = {"bpp", "psnr", "ms-ssim", "ssim", "lpips", "dists", "niqe"}  # the Kodak sheet has no FID/KID
POINTS = {"diffeic": 5, "rdeic-2": 5, "rdeic-5": 5, "perco": 2, "hific-lowrate": 3}

# (stem, metric, index, value): cells of results.xlsx at COMMIT, looked up by hand
CELLS = [
    ("kodak_diffeic", "bpp", 0, 0.12325711),               # Kodak!B3
    ("kodak_diffeic", "psnr", 0, 24.44),                   # Kodak!F3
    ("kodak_diffeic", "lpips", 4, 0.3185),                 # Kodak!C7
    ("kodak_diffeic", "dists", 0, 0.0641),                 # Kodak!G3
    ("kodak_rdeic-2", "dists", 0, 0.0607746293147405),     # Kodak!G44
    ("kodak_rdeic-5", "bpp", 4, 0.0237698025173611),       # Kodak!B54
    ("kodak_perco", "psnr", 1, 19.52813),                  # Kodak!F42
    ("kodak_hific-lowrate", "bpp", 2, 0.048887417),        # Kodak!B25 ('low')
    ("kodak_hific-lowrate", "dists", 2, 0.19147049387296),  # Kodak!G25
    ("clic2020diffeic_diffeic", "fid", 0, 6.44840079956179),  # CLIC2020!E3
    ("clic2020diffeic_diffeic", "kid", 4, 0.00191),        # CLIC2020!F7
    ("clic2020diffeic_rdeic-5", "bpp", 4, 0.0209050797475337),  # CLIC2020!B54
    ("clic2020diffeic_perco", "fid", 1, 16.0242760015497),  # CLIC2020!E42
    ("clic2020diffeic_hific-lowrate", "dists", 0, 0.0916324802369714),  # CLIC2020!I23 ('high')
]


@pytest.mark.parametrize("dataset", ["kodak", "clic2020diffeic"])
@pytest.mark.parametrize("method", METHODS)
def test_each_curve_loads_with_its_metrics_and_source(dataset, method):
    stem = f"{dataset}_{method}"
    curve = load(stem)
    data = json.loads(references()[stem].read_text())
    claimed = KODAK if dataset == "kodak" else KODAK | {"fid", "kid"}
    assert set(curve.metrics) == claimed and len(curve.bpp) == POINTS[method]
    assert all(curve.has(m) for m in claimed) and data["dataset"] == dataset
    src = curve.source
    assert src["commit"] == COMMIT and COMMIT in src["url"] and "indicators/results.xlsx" in src["url"]
    assert src["notes"].startswith("Values copied unchanged") and "states no protocol" in src["notes"]


@pytest.mark.parametrize("stem,metric,index,value", CELLS)
def test_values_are_the_cells_of_the_sheet(stem, metric, index, value):
    assert load(stem).get(metric)[index] == value  # copied, not rounded


def test_the_sheets_clic_set_is_a_dataset_of_its_own(capsys, tmp_path):
    """Its numbers match neither CLIC2020 set shipped before: never mixed into their --reference."""
    assert {"kodak", "clic2020", "clic2020test", "clic2020diffeic"} <= set(datasets())
    assert {c.name for c in reference_curves("clic2020diffeic")} == {
        f"{n} (CLIC2020 per DiffEIC)" for n in ("DiffEIC", "RDEIC-2", "RDEIC-5", "PerCo", "HiFiC low-rate")}
    assert not any("DiffEIC" in c.source.get("url", "") for c in reference_curves("clic2020test"))
    code, out, err = run(capsys, "bdrate", "kodak_hific-lowrate", "kodak_diffeic", "--metric", "dists")
    assert code == 0 and "%" in out, err
    code, _, err = run(capsys, "plot", "--reference", "kodak", "--metric", "psnr,dists", "-o", tmp_path / "rd.png")
    assert code == 0 and (tmp_path / "rd.png").stat().st_size > 0, err


def write_sheet(path: Path, bad_cell: str | None = None):
    """A workbook laid out like DiffEIC's: per sheet one header row, then titled blocks."""
    openpyxl = pytest.importorskip("openpyxl", reason="openpyxl (the test extra) is not installed")
    book = openpyxl.Workbook()
    book.remove(book.active)
    for sheet, header in (("Kodak", ["index", "bpp", "LPIPS", "MS-SSIM", "NIQE", "PSNR", "DISTS", "SSIM"]),
                          ("CLIC2020", ["Ours", "bpp", "LPIPS", "MS-SSIM", "FID", "KID", "NIQE", "PSNR",
                                        "DISTS", "SSIM"])):
        ws = book.create_sheet(sheet)
        first = True
        for block in ("DiffEIC", "BPG", "HiFiC", "PerCo", "RDEIC-2", "RDEIC-5"):
            ws.append([block])
            if first:
                ws.append(header)
                first = False
            for k in (1, 2):  # quality falls with rate everywhere but in LPIPS/DISTS/FID/KID/NIQE
                base = 0.1 * k
                ws.append([k] + [base / 10 if h == "bpp" else 30 - k if h == "PSNR" else
                                 0.9 - base if h in ("MS-SSIM", "SSIM") else base for h in header[1:]])
        ws.append(["SD Encoder"])
        ws.append([1, "/", 0.05, 0.95, 3.4, 26.6, 0.04, 0.72][:len(header)])
    if bad_cell:
        book["Kodak"][bad_cell] = "n/a"
    book.save(path)


def test_the_import_tool_copies_cells_and_refuses_text(tmp_path, capsys):
    xlsx = tmp_path / "results.xlsx"
    write_sheet(xlsx)
    tool = runpy.run_path(str(TOOL))
    tool["main"]([str(xlsx), "--commit", COMMIT, "--out", str(tmp_path / "ref")])
    written = sorted(p.stem for p in (tmp_path / "ref").glob("*.json"))
    assert written == sorted(f"{d}_{m}" for d in ("kodak", "clic2020diffeic") for m in METHODS)
    c = load(tmp_path / "ref" / "kodak_rdeic-5.json")
    # RDEIC-5 is the 6th block: rows 1 title, 2 header, then 3 rows per block
    assert c.bpp == [0.01, 0.02] and c.get("psnr") == [29, 28] and "rows 18-19" in c.source["notes"]
    assert "fid" not in c.metrics and load(tmp_path / "ref" / "clic2020diffeic_perco.json").get("kid") == [0.1, 0.2]
    with pytest.raises(SystemExit, match="exist; pass --force"):
        tool["main"]([str(xlsx), "--commit", COMMIT, "--out", str(tmp_path / "ref")])
    write_sheet(xlsx, bad_cell="G3")  # DiffEIC's first DISTS
    with pytest.raises(SystemExit, match=r"DISTS at G3: 'n/a' is not a number"):
        tool["main"]([str(xlsx), "--commit", COMMIT, "--out", str(tmp_path / "ref"), "--force"])
