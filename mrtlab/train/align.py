"""Stage 1's optional alignment of the latent to the discrete codes of a teacher model.

The teacher is any trained mrtlab model (e.g. a 2-D baseline) with the same quantizer
levels and the same symbol layout, or a 2-D latent (one slot) that is ``k`` times finer
than the student's windows with ``k² = slots``: its ``k×k`` cells per window become the
student's slots, in raster order. The loss is the mean squared distance between the
student's symbol positions (straight-through, so the gradient reaches the pre-rounding
latent) and the teacher's symbols, each channel scaled by its number of steps: it is zero
once every symbol rounds to the teacher's, and pulls a wrong one toward the right bin.
"""
from __future__ import annotations

import torch

from ..entropy import Layout
from ..errors import MrtlabError
from ..zoo.model_files import load_model


def regroup(t: torch.Tensor, src: Layout, dst: Layout) -> torch.Tensor:
    """Teacher symbols ``[B, T, C]`` in ``src`` order → ``dst`` order."""
    if src == dst:
        return t
    k = int(round(dst.slots ** 0.5))
    if src.slots != 1 or k * k != dst.slots or (src.rows, src.cols) != (dst.rows * k, dst.cols * k):
        raise MrtlabError(f"teacher layout {src} cannot be aligned to the student's {dst}")
    B, _, C = t.shape
    t = t.reshape(B, dst.rows, k, dst.cols, k, C).permute(0, 1, 3, 2, 4, 5)
    return t.reshape(B, dst.tokens, C)


class Teacher:
    def __init__(self, path: str, student, crop: int, device):
        self.model = load_model(path).to(device)
        self.student = student
        if self.model.quantizer.levels != student.quantizer.levels:
            raise MrtlabError(f"teacher {path} has quantizer levels {self.model.quantizer.levels}, "
                              f"the student {student.quantizer.levels}")
        regroup(torch.zeros(1, self.layout(crop, self.model).tokens, 1),
                self.layout(crop, self.model), self.layout(crop, student))  # fails early if unalignable
        self.steps = torch.tensor(student.quantizer.levels, device=device, dtype=torch.float32) - 1

    @staticmethod
    def layout(size: int, model) -> Layout:
        return model.layout(model.grid(size, size))

    @torch.no_grad()
    def targets(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's symbols, computed in fp32 even under the loop's autocast."""
        with torch.autocast(x.device.type, enabled=False):
            y, grid = self.model.encode(x.float())
            t = self.model.quantizer.symbols(self.model.quantizer(y)).float()
        h, w = x.shape[-2:]
        return regroup(t, self.model.layout(grid), self.student.layout(self.student.grid(h, w)))

    def loss(self, q: torch.Tensor, x: torch.Tensor, tokens: int) -> torch.Tensor:
        """``q``: the student's symbol positions, ``tokens`` kept per window."""
        t = self.student.keep(self.targets(x), tokens)
        return (((q.float() - t) / self.steps) ** 2).mean()
