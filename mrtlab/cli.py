"""The ``mrtlab`` command: compress, decompress, info, models, train."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import MrtlabError

SUFFIX = ".mrt"


def fail(msg: str) -> None:
    print(f"mrtlab: error: {msg}", file=sys.stderr)


def output_path(src: Path, out: str | None, suffix: str, many: bool) -> Path:
    """``-o`` is a folder, or (for a single input) a file name with the right suffix."""
    if out and not many and Path(out).suffix.lower() == suffix:
        return Path(out)
    folder = Path(out) if out else Path(".")
    if folder.exists() and not folder.is_dir():
        raise MrtlabError(f"output {folder} is a file, not a folder")
    return folder / (src.stem + suffix)


def each(paths, action) -> int:
    """Run ``action`` on every input; a bad input is reported and the rest still run."""
    status = 0
    for p in paths:
        try:
            action(Path(p))
        except MrtlabError as e:
            fail(str(e))
            status = 1
    return status


def cmd_compress(args) -> int:
    from .codec import encode, load_rgb
    from .codec.image_io import check_writable
    from .models import load_model

    model = load_model(args.model)
    many = len(args.images) > 1

    def one(src: Path):
        dst = output_path(src, args.output, SUFFIX, many)
        check_writable(dst, args.force)
        rgb, notice = load_rgb(src)
        if notice:
            print(f"{src}: note: {notice}", file=sys.stderr)
        enc = encode(model, rgb)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(enc.data)
        h, w = rgb.shape[:2]
        print(f"{src} -> {dst}  {w}x{h}  {enc.bytes} bytes  {8 * enc.bytes / (h * w):.4f} bpp "
              f"(estimated {enc.estimated_bits / (h * w):.4f})  {enc.seconds:.2f} s")

    return each(args.images, one)


def cmd_decompress(args) -> int:
    import time

    from .codec import decode, read_header, save_png
    from .codec.image_io import check_writable
    from .models import load_model

    many = len(args.files) > 1

    def one(src: Path):
        dst = output_path(src, args.output, ".png", many)
        check_writable(dst, args.force)
        data = read_bytes(src)
        header = read_header(data)
        model = load_model(args.model) if args.model else bundled_for(header.fingerprint)
        t0 = time.perf_counter()
        rgb, _ = decode(model, data)
        save_png(rgb, dst, force=args.force)
        print(f"{src} -> {dst}  {header.width}x{header.height}  {time.perf_counter() - t0:.2f} s")

    return each(args.files, one)


def bundled_for(fp: bytes):
    """The bundled model that wrote a file, found by its fingerprint."""
    from .models import BUNDLED, load_model

    for name in BUNDLED:
        try:
            model = load_model(name)
        except MrtlabError:
            continue
        if model.fingerprint == fp:
            return model
    raise MrtlabError(f"file was made by a model that is not bundled (fingerprint {fp.hex()}); "
                      "pass it with --model")


def read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise MrtlabError(f"{path}: no such file")
    if path.is_dir():
        raise MrtlabError(f"{path}: is a folder, not an .mrt file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise MrtlabError(f"{path}: cannot read ({e.strerror})") from None
    return data


def cmd_info(args) -> int:
    from .codec import HEADER_BYTES, read_header

    def one(src: Path):
        data = read_bytes(src)
        try:
            h = read_header(data)
        except MrtlabError as e:
            raise MrtlabError(f"{src}: {e}") from None
        print(f"{src}: mrtlab format v{h.version}, {h.width}x{h.height}, model {h.fingerprint.hex()}, "
              f"{h.tokens} latent tokens/window, {len(data)} bytes "
              f"({HEADER_BYTES} header + {len(data) - HEADER_BYTES} payload), "
              f"{8 * len(data) / (h.width * h.height):.4f} bpp")

    return each(args.files, one)


def cmd_models(args) -> int:
    from .models import BUNDLED, load_model

    for name, text in BUNDLED.items():
        try:
            fp = load_model(name).fingerprint.hex()
        except MrtlabError as e:
            fp = f"unavailable: {e}"
        print(f"{name}\t{fp}\t{text}")
    return 0


def cmd_train(argv: list[str]) -> int:
    from .config import parse
    from .train import train

    cfg = parse(argv)
    from .config import build_model
    model_cfg = cfg.model.as_dict()
    model = build_model(model_cfg)
    path = train(model, model_cfg, cfg.train)
    print(f"trained model: {path}")
    return 0


def cmd_bench(args) -> int:
    import json

    if args.what == "mixers":
        from .bench import mixers as bench

        def progress(line):
            print(line, file=sys.stderr, flush=True)
        rows = bench.run(mixers=args.mixers or bench.MIXERS, lengths=args.lengths or bench.LENGTHS,
                         dim=args.dim, repeat=args.repeat, device=args.device, budget=args.budget,
                         ops_T=args.ops_T, progress=progress)
        print(bench.table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
        print(f"results: {args.json}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mrtlab", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compress", help="images → .mrt files")
    c.add_argument("images", nargs="+")
    c.add_argument("-o", "--output", help="output folder (or file name for one image)")
    c.add_argument("-m", "--model", default="demo", help="bundled model name or weights path")
    c.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    d = sub.add_parser("decompress", help=".mrt files → PNG")
    d.add_argument("files", nargs="+")
    d.add_argument("-o", "--output", help="output folder (or file name for one file)")
    d.add_argument("-m", "--model", help="model (default: the bundled model that wrote the file)")
    d.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    i = sub.add_parser("info", help="print the header of .mrt files")
    i.add_argument("files", nargs="+")
    sub.add_parser("models", help="list the bundled models")
    b = sub.add_parser("bench", help="benchmarks: bench mixers --json OUT.json")
    b.add_argument("what", choices=["mixers"])
    b.add_argument("--json", help="write the rows to this JSON file")
    b.add_argument("--mixers", nargs="+", help="default: every global mixer")
    b.add_argument("--lengths", nargs="+", type=int, help="window counts T (squares)")
    b.add_argument("--dim", type=int, default=256)
    b.add_argument("--repeat", type=int, default=3)
    b.add_argument("--device", default="cpu")
    b.add_argument("--budget", type=float, default=120.0,
                   help="skip a size predicted to take longer than this many seconds")
    b.add_argument("--ops-T", dest="ops_T", type=int, default=4096,
                   help="T of the chunked-vs-recurrent op comparison (0: skip)")
    sub.add_parser("train", help="train from a recipe: train --config RECIPE.yaml [--key value ...]",
                   add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["train"]:
            return cmd_train(argv[1:])
        args = build_parser().parse_args(argv)
        return {"compress": cmd_compress, "decompress": cmd_decompress, "info": cmd_info,
                "models": cmd_models, "bench": cmd_bench}[args.command](args)
    except MrtlabError as e:
        fail(str(e))
        return 1
    except KeyboardInterrupt:
        fail("interrupted")
        return 130
    except Exception as e:  # never a traceback for the user; MRTLAB_DEBUG=1 shows it
        if os.environ.get("MRTLAB_DEBUG"):
            raise
        fail(f"internal error ({type(e).__name__}: {e}); rerun with MRTLAB_DEBUG=1 for details")
        return 70


if __name__ == "__main__":
    sys.exit(main())
