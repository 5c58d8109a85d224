"""The codec: image I/O, the .mrt container, compress/decompress with a model."""
from .codec import Encoded, decode, encode, encode_at_bpp, read_header
from .container import HEADER_BYTES, Header, pack, unpack
from .image_io import load_rgb, save_png

__all__ = ["Encoded", "decode", "encode", "encode_at_bpp", "read_header", "HEADER_BYTES", "Header", "pack",
           "unpack", "load_rgb", "save_png"]
