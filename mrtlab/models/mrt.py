"""MRT: windows → {local Transformer, global RWKV} encoder → 1-D latent → mirrored decoder."""
from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..entropy import EntropyModel
from ..mixers import GlobalMixer, LocalMixer
from ..quantizers import Quantizer
from ..registry import ARCHITECTURES, lookup, register, register_architecture
from ..tokenizers import Grid, Tokenizer
from ..tokenizers.base import from_windows, to_windows
from .base import CodecModel, to_uint8


class TokenwiseLinear(nn.Module):
    """A linear map of its own for each of the L latent tokens: ``[..., L, d_in]`` →
    ``[..., L, d_out]``. With one map shared by all tokens, tokens that the encoder makes
    alike give alike symbols (the collapse of docs/results.md); with one map each, the
    same state still yields L different projections."""

    def __init__(self, tokens: int, d_in: int, d_out: int):
        super().__init__()
        bound = d_in ** -0.5                                 # nn.Linear's default init
        self.weight = nn.Parameter(torch.empty(tokens, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(tokens, d_out).uniform_(-bound, bound))

    def forward(self, x):  # the first n ≤ L tokens: a model that keeps k tokens decodes k
        n = x.shape[-2]
        return torch.einsum("...ld,ldc->...lc", x, self.weight[:n]) + self.bias[:n]


class MixerStack(nn.Module):
    """N × {local mixer over each window's tokens, global mixer over windows per latent token}.

    Args:
        layers: number of {local, global} pairs.
        dim: token width D.
        local_mixer: builds one local mixer from D (``mixers/transformer.py``).
        global_mixer: builds one global mixer from D (``mixers/rwkv6.py`` …).
        latent_tokens: L, the latent tokens at the end of each window; only they cross windows.
        shift: every second local mixer works on the patch tokens of a window grid shifted by
            half a window (Swin's shifted windows; the grid is padded by half a window of zero
            tokens on each side, so nothing wraps around the image): patch tokens then also
            mix across window boundaries. The latent tokens skip those layers.
    """

    def __init__(self, layers: int, dim: int, local_mixer, global_mixer, latent_tokens: int,
                 shift: bool = False):
        super().__init__()
        self.latent_tokens, self.shift = latent_tokens, shift
        self.local = nn.ModuleList(local_mixer(dim) for _ in range(layers))
        self.glob = nn.ModuleList(global_mixer(dim) for _ in range(layers))

    def shifted(self, local, patches):
        """``local`` over the windows of the grid shifted by half a window:
        ``[B, nWh, nWw, S², D]`` → same."""
        B, h, w, T, D = patches.shape
        S = math.isqrt(T)
        m = F.pad(from_windows(patches, S), (S // 2, S - S // 2) * 2)    # [B, D, (h+1)·S, (w+1)·S]
        m = local(to_windows(m, Grid(0, 0, h + 1, w + 1, 0), S).reshape(-1, T, D))
        m = from_windows(m.reshape(B, h + 1, w + 1, T, D), S)            # back to the map, cropped
        return to_windows(m[:, :, S // 2:S // 2 + h * S, S // 2:S // 2 + w * S], Grid(0, 0, h, w, 0), S)

    def forward(self, x):  # [B, nWh, nWw, T=S²+L, D]; the last L tokens are the latent tokens
        B, h, w, T, D = x.shape
        L = self.latent_tokens
        for i, (local, glob) in enumerate(zip(self.local, self.glob)):
            if self.shift and i % 2:
                # patch tokens in the shifted windows; latent tokens as they are
                x = torch.cat([self.shifted(local, x[:, :, :, :T - L]), x[:, :, :, T - L:]], dim=3)
            else:
                # each window on its own: [B·nWh·nWw, T, D]
                x = local(x.reshape(B * h * w, T, D)).reshape(B, h, w, T, D)
            # the i-th latent token of every window as one grid: [B·L, nWh, nWw, D]
            lat = x[:, :, :, T - L:].permute(0, 3, 1, 2, 4).reshape(B * L, h, w, D)
            # back: [B, L, nWh, nWw, D] → [B, nWh, nWw, L, D]
            lat = glob(lat).reshape(B, L, h, w, D).permute(0, 2, 3, 1, 4)
            x = torch.cat([x[:, :, :, :T - L], lat], dim=3)
        return x

    @torch.no_grad()
    def forward_in_place(self, x: torch.Tensor, rows: int) -> torch.Tensor:
        """``forward`` without gradient, overwriting ``x`` and running each local mixer on
        ``rows`` window rows at a time: the memory of one copy of ``x`` and one strip, for
        large images. The global mixers see the L latent grids at once, as ``forward`` does
        (the same numbers), unless they exceed ``SLOT_BATCH_BYTES``: then one grid at a time
        (a quarter of the memory; decoded pixels may differ from the batched path by one
        level of rounding). Not with ``shift``, whose shifted windows straddle two window rows."""
        assert not self.shift, "shifted windows are mixed whole (forward)"
        B, h, w, T, D = x.shape
        L = self.latent_tokens
        one_by_one = B * L * h * w * D * x.element_size() > self.SLOT_BATCH_BYTES
        for local, glob in zip(self.local, self.glob):
            for a in range(0, h, rows):
                part = x[:, a:a + rows]
                x[:, a:a + rows] = local(part.reshape(-1, T, D)).reshape(part.shape)
            if one_by_one:
                for slot in range(T - L, T):                 # [B, nWh, nWw, D] each
                    x[:, :, :, slot] = glob(x[:, :, :, slot])
            else:
                lat = x[:, :, :, T - L:].permute(0, 3, 1, 2, 4).reshape(B * L, h, w, D)
                x[:, :, :, T - L:] = glob(lat).reshape(B, L, h, w, D).permute(0, 2, 3, 1, 4)
        return x

    SLOT_BATCH_BYTES = 64 << 20   # latent grids mixed at once up to this size (about 16 MP at L = 4, D = 128)


@register("mrt")
class MRT(CodecModel):
    """The Mixed RWKV-Transformer codec model: every part is a plugin a recipe chooses.

    One image's path, and the file behind each box (the default parts)::

        image [B,3,H,W] in [0,1]
          │ tokenizer.tokenize             tokenizers/patch_window.py  P×P patches, S×S per window
          │                                (or tokenizers/conv_window.py: a convolutional stem)
          ▼
        patch tokens [B,nWh,nWw,S²,D]  +  L latent_queries per window
          │ encoder: MixerStack            models/mrt.py (above)
          │   local mixer in each window   mixers/transformer.py → ops/attention.py
          │                                (shift_windows: every second one on windows
          │                                shifted by half a window)
          │   global mixer across windows  mixers/rwkv6.py → mixers/scan.py, ops/wkv6.py
          ▼ to_latent on the L latent tokens
        latent y [B, windows·L, C]         window-major: window 0's L tokens, then window 1's …
          │ quantizer                      quantizers/fsq.py
          ▼ keep the first k ≤ L per window (models/base.py `keep`; variable rate)
        symbols q [B, windows·k, C] ──► entropy_model   entropy/rcm.py (prices; codes with
          │                                             entropy/base.py's constriction coder)
          │                                 codec/codec.py + codec/container.py: the .mrt file
          ▼ from_latent; dropped tokens k+1…L get dropped_token; + latent_positions
        S² mask_tokens (+ skip: a linear map of the L latent tokens) + L latent tokens per window
          │ decoder: MixerStack            the same mixers, its own weights
          │ out_norm, tokenizer.detokenize tokenizers/patch_window.py (+ refine convolutions)
          │                                or conv_window.py's synthesis
          ▼
        image [B,3,H,W] (not clamped)

    Training (``forward``) and coding (``compress``/``decompress``) are in models/base.py.
    A part left out is ``mrt_patchwise``'s (``MRT()`` builds that architecture, see
    ``mrtlab.list_models()``).

    Args:
        tokenizer: builds the tokenizer from ``dim``.
        local_mixer: builds one local mixer from ``dim`` (one per layer).
        global_mixer: builds one global mixer from ``dim`` (one per layer).
        quantizer: the quantizer; its ``channels`` are the latent's C.
        entropy_model: builds the entropy model from the quantizer's levels.
        dim: token width D.
        latent_tokens: L, latent tokens per window.
        encoder_layers: {local, global} pairs in the encoder.
        decoder_layers: {local, global} pairs in the decoder.
        nested_dropout: train with a random number k of leading tokens kept per window
            (1…L, uniform), the others replaced by the learned ``dropped_token``, so that
            one model codes at L rates (``compress(tokens=k)``).
        shift_windows: every second local mixer of both stacks works on a grid shifted by
            half a window (``MixerStack``), so that patch tokens mix across windows.
        per_token_heads: each latent token has its own ``to_latent`` and ``from_latent``
            map (``TokenwiseLinear``) instead of one shared by all.
        latent_init: standard deviation of the latent queries and latent positions at
            initialisation (0.02: drowned by the first attention output, so that all the
            latent tokens of a window start alike; 1: as large as a normalised token).
        latent_start: what the encoder's latent tokens start from: ``queries`` (the same
            learned queries in every window) or ``regions`` (the queries plus the mean of
            the window's patch tokens over one of L regions each, a grid of a×b = L), so that
            a window's tokens start different, each from its own part of the window.
        latent_skip: width r of a linear path from a window's L latent tokens straight to
            its S² patch tokens at the decoder's input (each token to r features, the L·r
            of a window to the S² patch tokens; 0: none). Through attention alone, the
            decoder first reads the sum of a window's latent tokens, so every token gets
            the same gradient and they stay alike; this path gives each token its own.
    """
    def __init__(self,
                 tokenizer: Callable[[int], Tokenizer] | None = None,
                 local_mixer: Callable[[int], LocalMixer] | None = None,
                 global_mixer: Callable[[int], GlobalMixer] | None = None,
                 quantizer: Quantizer | None = None,
                 entropy_model: Callable[[list[int]], EntropyModel] | None = None,
                 dim: int = 128,
                 latent_tokens: int = 4,
                 encoder_layers: int = 3,
                 decoder_layers: int = 4,
                 nested_dropout: bool = True,
                 shift_windows: bool = False,
                 per_token_heads: bool = False,
                 latent_init: float = 0.02,
                 latent_start: str = "queries",
                 latent_skip: int = 0):
        super().__init__()
        tokenizer = tokenizer or default_part("tokenizer")
        local_mixer = local_mixer or default_part("local_mixer")
        global_mixer = global_mixer or default_part("global_mixer")
        quantizer = quantizer or default_part("quantizer")()
        entropy_model = entropy_model or default_part("entropy_model")
        if latent_start not in ("queries", "regions"):
            raise ValueError(f"latent_start must be 'queries' or 'regions', got {latent_start!r}")
        self.dim, self.latent_tokens, self.latent_start = dim, latent_tokens, latent_start
        self.tokenizer = tokenizer(dim)
        self.quantizer = quantizer
        self.entropy_model = entropy_model(quantizer.levels)
        S2, L, C = self.tokenizer.tokens_per_window, latent_tokens, quantizer.channels
        self.latent_queries = nn.Parameter(torch.randn(L, dim) * latent_init)
        self.encoder = MixerStack(encoder_layers, dim, local_mixer, global_mixer, L, shift_windows)
        self.to_latent = nn.Sequential(
            nn.LayerNorm(dim), TokenwiseLinear(L, dim, C) if per_token_heads else nn.Linear(dim, C))
        self.from_latent = TokenwiseLinear(L, C, dim) if per_token_heads else nn.Linear(C, dim)
        self.latent_positions = nn.Parameter(torch.randn(L, dim) * latent_init)
        self.mask_tokens = nn.Parameter(torch.randn(S2, dim) * 0.02)
        self.skip = nn.Sequential(
            nn.Linear(dim, latent_skip), nn.Flatten(-2),
            nn.Linear(L * latent_skip, S2 * dim), nn.Unflatten(-1, (S2, dim))) if latent_skip else None
        self.decoder = MixerStack(decoder_layers, dim, local_mixer, global_mixer, L, shift_windows)
        self.out_norm = nn.LayerNorm(dim)
        self.variable_rate = nested_dropout
        if nested_dropout:
            self.dropped_token = nn.Parameter(torch.zeros(dim))

    def grid(self, height: int, width: int) -> Grid:
        return self.tokenizer.grid(height, width)

    def coder_modules(self) -> tuple[str, ...]:
        analysis = tuple(f"tokenizer.{m}" for m in self.tokenizer.analysis_modules)
        return (*analysis, "latent_queries", "encoder", "to_latent")

    def periods(self) -> dict[str, int]:
        return {"window": self.grid(1, 1).window_px, "patch": self.tokenizer.patch}

    # -- analysis / synthesis ---------------------------------------------------------
    def encode(self, image: torch.Tensor) -> tuple[torch.Tensor, Grid]:
        tokens, grid = self.tokenizer.tokenize(image)    # [B, nWh, nWw, S², D]
        B, h, w = tokens.shape[:3]
        lat = self.latent_queries.expand(B, h, w, -1, -1)  # [B, nWh, nWw, L, D]
        if self.latent_start == "regions":
            lat = lat + self.region_means(tokens)
        x = self.encoder(torch.cat([tokens, lat], dim=3))  # [B, nWh, nWw, S²+L, D]
        y = self.to_latent(x[:, :, :, -self.latent_tokens:])  # [B, nWh, nWw, L, C]
        return y.reshape(B, h * w * self.latent_tokens, -1), grid  # [B, windows·L, C]

    def region_means(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[B, nWh, nWw, S², D]`` → the mean patch token of each of L regions of every
        window (a grid of a rows × b columns, a the largest divisor of L ≤ √L):
        ``[B, nWh, nWw, L, D]``."""
        B, h, w, T, D = tokens.shape
        S, L = math.isqrt(T), self.latent_tokens
        a = max(d for d in range(1, math.isqrt(L) + 1) if L % d == 0)
        x = tokens.reshape(B * h * w, S, S, D).permute(0, 3, 1, 2)   # [B·windows, D, S, S]
        x = F.adaptive_avg_pool2d(x, (a, L // a))                     # [B·windows, D, a, b]
        return x.flatten(2).transpose(1, 2).reshape(B, h, w, L, D)

    def decoder_input(self, q: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
        """Symbol positions of ``rows × cols`` windows ``[B, windows·k, C]`` → the decoder's
        tokens ``[B, rows, cols, S²+L, D]``: S² mask tokens (+ the skip path), then the L
        latent tokens (dropped ones replaced by ``dropped_token``)."""
        B, L = q.shape[0], self.latent_tokens
        k = q.shape[1] // (rows * cols)                   # tokens kept per window
        lat = self.from_latent(self.quantizer.dequantize(q.float()).reshape(B, rows, cols, k, -1))
        if k < L:                                         # → [B, rows, cols, L, D]
            lat = torch.cat([lat, self.dropped_token.expand(B, rows, cols, L - k, -1)], dim=3)
        lat = lat + self.latent_positions
        mask = self.mask_tokens.expand(B, rows, cols, -1, -1)
        if self.skip is not None:                         # [B, rows, cols, L, D] → [B, rows, cols, S², D]
            mask = mask + self.skip(lat)
        return torch.cat([mask, lat], dim=3)

    def decode(self, q: torch.Tensor, grid: Grid) -> torch.Tensor:
        x = self.decoder(self.decoder_input(q, grid.windows_h, grid.windows_w))
        # the S² patch tokens of every window: [B, nWh, nWw, S², D] → image
        return self.tokenizer.detokenize(self.out_norm(x[:, :, :, :-self.latent_tokens]), grid)

    # -- large images: strips of window rows, in bounded memory ---------------------------
    strip_pixels = 2_000_000   # images above this many pixels are coded strip by strip,
    strip_area = 1_000_000     # in strips of about this many pixels

    def in_strips(self, height: int, width: int) -> bool:
        """Whether an image is coded strip by strip: a large one, with a tokenizer that can."""
        return (height * width > self.strip_pixels and hasattr(self.tokenizer, "tokenize_rows")
                and not self.encoder.shift)

    def strips(self, grid: Grid) -> list[tuple[int, int]]:
        """Window rows in strips of about ``strip_area`` pixels."""
        rows = max(1, self.strip_area // (grid.windows_w * grid.window_px ** 2))
        return [(a, min(a + rows, grid.windows_h)) for a in range(0, grid.windows_h, rows)]

    @torch.no_grad()
    def encode_rgb(self, rgb) -> tuple[torch.Tensor, Grid]:
        """``encode`` of an ``H×W×3`` uint8 image; a large one strip by strip: the stem on each
        strip with the rows of context its receptive field needs, the encoder's local mixers a
        strip at a time over one tensor of tokens, the global mixers over all latent tokens."""
        H, W = rgb.shape[:2]
        if not self.in_strips(H, W):
            return super().encode_rgb(rgb)
        g, S2, L = self.grid(H, W), self.tokenizer.tokens_per_window, self.latent_tokens
        strips = self.strips(g)
        x = torch.empty(1, g.windows_h, g.windows_w, S2 + L, self.dim, device=self.latent_queries.device)
        for a, b in strips:
            tokens = self.tokenizer.tokenize_rows(rgb, g, a, b)
            lat = self.latent_queries.expand(1, b - a, g.windows_w, -1, -1)
            x[:, a:b, :, :S2] = tokens
            x[:, a:b, :, S2:] = lat + self.region_means(tokens) if self.latent_start == "regions" else lat
        self.encoder.forward_in_place(x, strips[0][1])
        return self.to_latent(x[:, :, :, S2:]).reshape(1, g.windows * L, -1), g

    @torch.no_grad()
    def reconstruct(self, symbols: torch.Tensor, grid: Grid) -> torch.Tensor:
        """``CodecModel.reconstruct``; a large image strip by strip (``encode_rgb``'s way)."""
        if not self.in_strips(grid.height, grid.width):
            return super().reconstruct(symbols, grid)
        S2, w, tok = self.tokenizer.tokens_per_window, grid.windows_w, self.tokenizer
        strips, halo = self.strips(grid), tok.halo()
        q = symbols[None].float().to(self.mask_tokens.device)
        x = torch.empty(1, grid.windows_h, w, S2 + self.latent_tokens, self.dim, device=q.device)
        k = q.shape[1] // grid.windows
        for a, b in strips:
            x[:, a:b] = self.decoder_input(q[:, a * w * k:b * w * k], b - a, w)
        self.decoder.forward_in_place(x, strips[0][1])
        out = torch.empty(3, grid.height, grid.width, dtype=torch.uint8)
        noise = tok.noise_maps(grid)
        for a, b in strips:
            lo, hi = max(0, a - halo), min(grid.windows_h, b + halo)
            rows = tok.detokenize_rows(self.out_norm(x[:, lo:hi, :, :S2]), grid, lo, a, b, noise)[0]
            top = a * grid.window_px
            out[:, top:top + rows.shape[1]] = to_uint8(rows).cpu()
        return out


def default_part(kind: str) -> Callable:
    """``mrt_patchwise``'s part of ``kind``, as a builder: what ``MRT()`` leaves out."""
    section = ARCHITECTURES["mrt_patchwise"]["section"][kind]
    return partial(lookup(kind, section["class_path"]), **section.get("init_args", {}))


def _part(name: str, **init_args) -> dict:
    return {"class_path": name, "init_args": init_args} if init_args else {"class_path": name}


# -- named architectures (mrtlab.create_model / list_models) --------------------------
_SMALL = dict(
    dim=128, latent_tokens=4, encoder_layers=3, decoder_layers=4, nested_dropout=False,
    tokenizer=_part("patch_window", patch=8, window=4, refine_channels=16),
    local_mixer=_part("transformer", heads=4, mlp_ratio=3.0),
    global_mixer=_part("rwkv6", heads=4, decay_rank=32),
    quantizer=_part("fsq", levels=[5] * 8),
    entropy_model=_part("factorized"),
)
register_architecture("mrt_small", _SMALL,
                      "CPU-sized fixed-rate MRT: 32×32-pixel windows of 4 latent tokens, factorized prior")
_PATCHWISE = dict(_SMALL, nested_dropout=True, entropy_model=_part("rcm", dim=64, layers=2, heads=4, max_slots=4))
register_architecture("mrt_patchwise", _PATCHWISE,
                      "mrt_small with nested dropout (1–4 tokens per window) and the RCM; a per-patch "
                      "linear head draws each window on its own (the bundled default until December 2026)")
register_architecture("mrt_default", dict(
    _PATCHWISE, tokenizer=_part("conv_window", patch=8, window=4, widths=[32, 64], blocks=[0, 1, 2]),
    per_token_heads=True, latent_init=1.0, latent_skip=16),
    "the bundled default: mrt_patchwise with a convolutional stem and synthesis across windows "
    "and a head per latent token")
register_architecture("mrt_taef2", dict(
    _PATCHWISE, tokenizer=_part("taef2_window", window=4, blocks=2),
    per_token_heads=True, latent_init=1.0, latent_skip=16),
    "mrt_default in the latent of the frozen pretrained TAEF2 autoencoder: windows of 4×4 "
    "latent positions (32 px), its GAN-trained decoder draws the pixels")
register_architecture("mrt_paper", dict(
    _SMALL, dim=384, encoder_layers=6, decoder_layers=8,
    tokenizer=_part("patch_window", patch=16, window=4, refine_channels=64),
    local_mixer=_part("transformer", heads=6, mlp_ratio=4.0),
    global_mixer=_part("rwkv6", heads=8, decay_rank=64),
    entropy_model=_part("rcm", dim=256, layers=4, heads=4)),
    "the paper's setting, for GPUs: 64×64-pixel windows of 4 latent tokens, RCM")
register_architecture("mrt_tiny", dict(
    dim=32, latent_tokens=2, encoder_layers=1, decoder_layers=1, nested_dropout=False,
    tokenizer=_part("patch_window", patch=4, window=2, refine_channels=8),
    local_mixer=_part("transformer", heads=2),
    global_mixer=_part("rwkv6", heads=4, decay_rank=8),
    quantizer=_part("fsq", levels=[5, 3, 4]),
    entropy_model=_part("factorized")),
    "a few thousand weights, for tests: 8×8-pixel windows of 2 latent tokens")
