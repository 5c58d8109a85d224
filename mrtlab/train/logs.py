"""Training feedback: a progress bar, a JSONL log and TensorBoard scalars (main process)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from tqdm import tqdm

log = logging.getLogger(__name__)


def keep_rows(path: Path, start: int) -> Path:
    """Drop the rows after step ``start`` (a resumed run logs them again) and any row cut
    short by a kill in the middle of a write."""
    if path.is_file():
        rows = [r for r in path.read_text().splitlines() if (row := parse_row(r)) and row["step"] <= start]
        path.write_text("".join(r + "\n" for r in rows))
    return path


def parse_row(line: str) -> dict | None:
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) and "step" in row else None


class TrainLog:
    """What a person watching a run sees; the rows of a resumed run follow on seamlessly."""

    def __init__(self, out: Path, start: int, steps: int, enabled: bool, tensorboard: bool):
        self.enabled = enabled
        self.bar = tqdm(total=steps, initial=start, disable=not enabled, desc="train",
                        unit="step", dynamic_ncols=True)
        self.file = keep_rows(out / "log.jsonl", start).open("a") if enabled else None
        self.tb, self.shown = None, {}
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(str(out / "tensorboard"), purge_step=start + 1)
            except ImportError:
                log.warning("tensorboard is not installed (pip install 'mrtlab[train]'); "
                            "logging to log.jsonl only")

    def step(self) -> None:
        self.bar.update(1)

    def write(self, row: dict) -> None:
        """One row (``step`` and scalars) to the log, TensorBoard and the bar."""
        if not self.enabled:
            return
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()
        if self.tb is not None:
            for k, v in row.items():
                if k != "step":
                    self.tb.add_scalar(k, v, row["step"])
        self.shown.update({k: f"{row[k]:.4g}" for k in ("loss", "bpp", "psnr", "val_bpp", "val_psnr")
                           if k in row})
        self.bar.set_postfix(self.shown, refresh=False)

    def close(self) -> None:
        self.bar.close()
        if self.file:
            self.file.close()
        if self.tb is not None:
            self.tb.close()
