"""No mixing across windows: the ablation that shows what the global mixer is worth."""
from ..registry import register
from .base import GlobalMixer, LocalMixer


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


@register("identity")
class IdentityLocalMixer(LocalMixer):
    """No mixing inside a window: the ablation of the Transformer (each token, latent ones
    included, passes through; what a window's tokens learn together then comes only from
    the global mixers, which mix the latent tokens across windows).

    Args:
        dim: channels of a token (unused; every local mixer is built from it).

    ``[N_windows, T, D]`` → the same tensor.
    """

    def __init__(self, dim: int):
        super().__init__()

    def forward(self, x):
        return x
