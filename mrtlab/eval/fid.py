"""FID and KID over 256×256 patches, as HiFiC and MS-ILLM report them on Kodak/CLIC: each image
is cut into a grid of full patches, then again with the grid shifted by 128 px; Inception-v3
features (torch-fidelity's port of the TF graph, from a local file only) of the original and
the reconstructed patches are compared. FID/KID of a couple of hundred patches is noisy: it is
a dataset-level number, never per image."""
from __future__ import annotations

import numpy as np
import torch

from ..errors import MrtlabError, need
from ..pretrained import weights
from .metrics import Skipped

PATCH, SHIFT = 256, 128


def patches(rgb: np.ndarray) -> torch.Tensor:
    """``[N,3,256,256]`` uint8: full patches of the grid at offset 0 and at offset 128."""
    x = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1)
    out = []
    for off in (0, SHIFT):
        h, w = x.shape[1] - off, x.shape[2] - off
        for i in range(h // PATCH):
            for j in range(w // PATCH):
                top, left = off + i * PATCH, off + j * PATCH
                out.append(x[:, top:top + PATCH, left:left + PATCH])
    return torch.stack(out) if out else torch.empty(0, 3, PATCH, PATCH, dtype=torch.uint8)


def build_inception(folder=None):
    """torch-fidelity's Inception-v3 (2048-d pool features) from the local file, or ``Skipped``."""
    path = weights.weights_file("inception", folder)
    if not path.is_file():
        return Skipped(weights.missing("inception", path))
    extractor = need("torch_fidelity.feature_extractor_inceptionv3").FeatureExtractorInceptionV3
    try:
        weights.check_file("inception", path)  # plain tensors of the right shapes, or one line
    except MrtlabError as e:
        return Skipped(str(e))
    with weights.offline():
        return extractor("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))


class PatchFID:
    """Collects Inception features of original/reconstructed patches; ``score`` gives FID/KID."""

    def __init__(self, folder=None, batch: int = 16):
        self.net = build_inception(folder)
        self.skipped = str(self.net) if isinstance(self.net, Skipped) else None
        self.batch = batch

    @torch.no_grad()
    def features(self, rgb: np.ndarray) -> np.ndarray:
        p = patches(rgb)
        feats = [self.net(p[i:i + self.batch])[0] for i in range(0, len(p), self.batch)]
        return torch.cat(feats).numpy() if feats else np.zeros((0, 2048), np.float32)


def score(real: np.ndarray, fake: np.ndarray) -> dict:
    """FID and KID (torch-fidelity's formulas; KID subsets of min(1000, N) patches)."""
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, kid_features_to_metric

    r, f = torch.from_numpy(real).double(), torch.from_numpy(fake).double()
    fid = fid_statistics_to_metric(fid_features_to_statistics(r), fid_features_to_statistics(f),
                                   verbose=False)["frechet_inception_distance"]
    kid = kid_features_to_metric(r, f, kid_subset_size=min(1000, len(r), len(f)), verbose=False)
    return {"fid": fid, "kid": kid[KEY_METRIC_KID_MEAN]}
