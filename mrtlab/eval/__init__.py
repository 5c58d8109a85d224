"""Evaluation: metrics on real bitstreams, BD-rate, RD plots against published curves, and an
HTML report. Heavy dependencies (lpips, DISTS_pytorch, pytorch-msssim, torch-fidelity,
bjontegaard, matplotlib: the ``eval`` extra) are imported only where they are used."""
from .run import METRICS, ModelCodec, evaluate, list_images, write

__all__ = ["METRICS", "ModelCodec", "evaluate", "list_images", "write"]
