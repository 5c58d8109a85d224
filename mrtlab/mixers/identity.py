"""No mixing across windows: the ablation that shows what the global mixer is worth."""
from ..registry import register
from .base import GlobalMixer


@register("identity")
class IdentityMixer(GlobalMixer):
    """No mixing across windows: each window's latent tokens see only their own window.

    Args:
        dim: channels of a token (unused; every global mixer is built from it).

    ``[B, nWh, nWw, D]`` → the same tensor.
    """

    def __init__(self, dim: int):
        super().__init__()

    def forward(self, x):
        return x
