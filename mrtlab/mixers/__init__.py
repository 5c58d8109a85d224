"""Token mixers: global (across windows) and local (inside a window)."""
from .base import GlobalMixer, LocalMixer
from .identity import IdentityMixer
from .rwkv6 import RWKV6Mixer
from .transformer import TransformerBlock

__all__ = ["GlobalMixer", "LocalMixer", "IdentityMixer", "RWKV6Mixer", "TransformerBlock"]
