"""mrtlab: extreme image compression with compact 1-D latents (Mixed RWKV-Transformer)."""
__version__ = "0.1.0"
