"""Token mixers: global (across windows) and local (inside a window).

Importing this package registers every mixer's short name.
"""
from .attention import AttentionMixer
from .base import GlobalMixer, LocalMixer
from .gla import GLAMixer
from .identity import IdentityLocalMixer, IdentityMixer
from .mamba2 import Mamba2Mixer
from .rwkv6 import RWKV6Mixer
from .rwkv7 import RWKV7Mixer
from .scan import SCANS, ScanMixer
from .transformer import TransformerBlock

__all__ = ["AttentionMixer", "GlobalMixer", "LocalMixer", "GLAMixer", "IdentityLocalMixer", "IdentityMixer",
           "Mamba2Mixer", "RWKV6Mixer", "RWKV7Mixer", "SCANS", "ScanMixer", "TransformerBlock"]
