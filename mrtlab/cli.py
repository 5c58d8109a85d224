"""The ``mrtlab`` command: compress, decompress, info, models, train, bench, eval, bdrate, plot,
weights."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from pathlib import Path

from .errors import MrtlabError, MrtlabWarning

SUFFIX = ".mrt"
_python_showwarning = warnings.showwarning


def fail(msg: str) -> None:
    print(f"mrtlab: error: {msg}", file=sys.stderr)


def output_path(src: Path, out: str | None, suffix: str, many: bool) -> Path:
    """``-o`` is a folder, or (for a single input) a file name with the right suffix."""
    if out and Path(out).suffix.lower() == suffix and not Path(out).is_dir():
        if many:
            raise MrtlabError(f"-o {out} names one file, but several inputs were given: give a folder")
        return Path(out)
    folder = Path(out) if out else Path(".")
    if folder.exists() and not folder.is_dir():
        raise MrtlabError(f"output {folder} is a file, not a folder")
    return folder / (src.stem + suffix)


def plan_outputs(inputs: list[str], out: str | None, suffix: str) -> list[tuple[Path, Path]]:
    """Every (input, output) pair, checked before any work: two inputs never share an
    output, and no output is one of the inputs (not even with ``--force``)."""
    from .files import same_file

    many = len(inputs) > 1
    pairs = [(Path(p), output_path(Path(p), out, suffix, many)) for p in inputs]
    seen: dict[Path, Path] = {}
    for src, dst in pairs:
        key = dst.absolute()
        if key in seen:
            raise MrtlabError(f"{seen[key]} and {src} would both be written to {dst}; "
                              "rename one or compress them into different folders")
        seen[key] = src
        if any(same_file(dst, p) for p in inputs):
            raise MrtlabError(f"output {dst} is one of the inputs; it is never overwritten")
    return pairs


def each(items, action, what: str = "files") -> int:
    """Run ``action`` on every item; a failure is one line and the rest still run. A batch
    ends with the count of failures; the exit status is 1 if any failed."""
    failed = 0
    for item in items:
        try:
            try:
                action(*item) if isinstance(item, tuple) else action(Path(item))
            except (MemoryError, RuntimeError) as e:   # torch's allocator says it as a RuntimeError
                if not isinstance(e, MemoryError) and "can't allocate memory" not in str(e):
                    raise
                name = item[0] if isinstance(item, tuple) else item
                raise MrtlabError(f"{name}: not enough memory for this image with this model "
                                  "(README, \"Large photos\")") from None
        except MrtlabError as e:
            fail(str(e))
            failed += 1
    if failed and len(items) > 1:
        fail(f"{failed} of {len(items)} {what} failed")
    return 1 if failed else 0


def cmd_compress(args) -> int:
    from .codec import encode, encode_at_bpp, load_rgb
    from .codec.codec import check_rate_control
    from .files import check_writable, write_atomic
    from .zoo import load_model

    pairs = plan_outputs(args.images, args.output, SUFFIX)
    model = load_model(args.model, weights=args.weights)
    if args.tokens is not None:       # checked once, not once per image
        model.check_tokens(args.tokens)
    if args.bpp is not None:
        check_rate_control(model, args.bpp)

    def one(src: Path, dst: Path):
        check_writable(dst, args.force)   # before the encode, and again when written
        rgb, notice = load_rgb(src)
        if notice:
            print(f"{src}: note: {notice}", file=sys.stderr)
        if args.bpp is not None:
            enc, reached = encode_at_bpp(model, rgb, args.bpp)
            if not reached:
                print(f"{src}: note: {args.bpp} bpp is below this model's lowest rate; "
                      "coded with 1 token per window", file=sys.stderr)
        else:
            enc = encode(model, rgb, args.tokens)
        write_atomic(dst, enc.data, args.force)
        h, w = rgb.shape[:2]
        print(f"{src} -> {dst}  {w}x{h}  {enc.bytes} bytes  {8 * enc.bytes / (h * w):.4f} bpp "
              f"(estimated {enc.estimated_bits / (h * w):.4f})  {enc.seconds:.2f} s")

    return each(pairs, one, "images")


def cmd_decompress(args) -> int:
    import time

    from .codec import decode, read_header, save_png
    from .files import check_writable
    from .zoo import load_model

    pairs = plan_outputs(args.files, args.output, ".png")
    if args.model:  # a bad model or decoder name: one line, before any file
        load_model(args.model, args.decoder, weights=args.weights)

    def one(src: Path, dst: Path):
        check_writable(dst, args.force)
        data = read_bytes(src)
        try:
            header = read_header(data)
            model = load_model(args.model or bundled_for(header.fingerprint), args.decoder,
                               weights=args.weights)
            t0 = time.perf_counter()
            rgb, _ = decode(model, data)
        except MrtlabError as e:
            raise MrtlabError(f"{src}: {e}") from None
        save_png(rgb, dst, force=args.force)
        print(f"{src} -> {dst}  {header.width}x{header.height}  decoder {model.decoder_name}  "
              f"{time.perf_counter() - t0:.2f} s")

    return each(pairs, one)


def bundled_for(fp: bytes) -> str:
    """The bundled model that wrote a file, found by its fingerprint."""
    from .zoo.catalog import bundled_reader

    name = bundled_reader(fp)
    if name is None:
        raise MrtlabError(f"file was made by a model that is not bundled (fingerprint {fp.hex()}); "
                          "pass it with --model")
    return name


def read_bytes(path: Path) -> bytes:
    """The whole of a regular file (a FIFO or a device would block), or one line."""
    import stat

    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise MrtlabError(f"{path}: is a folder, not an .mrt file")
        if not stat.S_ISREG(mode):
            raise MrtlabError(f"{path}: not a regular file")
        return path.read_bytes()
    except FileNotFoundError:
        raise MrtlabError(f"{path}: no such file") from None
    except OSError as e:
        raise MrtlabError(f"{path}: cannot read ({e.strerror})") from None


def cmd_info(args) -> int:
    from .codec.container import HEADER_BYTES, unpack
    from .zoo.catalog import bundled_reader, list_decoders

    def one(src: Path):
        data = read_bytes(src)
        try:
            h, _ = unpack(data)
        except MrtlabError as e:
            raise MrtlabError(f"{src}: {e}") from None
        name = bundled_reader(h.fingerprint)
        reader = (f"bundled model {name}, decoders {', '.join(list_decoders(name))}" if name
                  else "no bundled model reads it")
        print(f"{src}: mrtlab format v{h.version}, {h.width}x{h.height}, model {h.fingerprint.hex()} "
              f"({reader}), {h.tokens} latent tokens/window, {len(data)} bytes "
              f"({HEADER_BYTES} header + {len(data) - HEADER_BYTES} payload), "
              f"{8 * len(data) / (h.width * h.height):.4f} bpp")

    return each(args.files, one)


def cmd_models(args) -> int:
    from .zoo import catalog, list_decoders, load_model
    from .zoo.catalog import model_files, trained_of

    def decoder(name: str, decoder: str) -> str:
        try:
            return f"{decoder} {load_model(name, decoder).decoder_hash}"
        except MrtlabError:  # a stale or damaged decoder file: the model itself still works
            return f"{decoder} (unusable: mrtlab decompress --decoder {decoder} says why)"

    for name, text in catalog.BUNDLED.items():
        try:
            model = load_model(name)
        except MrtlabError as e:
            print(f"{name}\tunavailable: {e}\t{text}")
            continue
        decoders = [decoder(name, d) for d in list_decoders(name)]
        L = model.latent_tokens
        rate = f"tokens 1…{L} (--tokens/--bpp)" if model.variable_rate else f"fixed rate ({L} tokens)"
        run = trained_of(model_files(name)[0])
        trained = f"\ttrained {run['step']} steps, {run['cpu_s']} CPU-s" if "step" in run else ""
        print(f"{name}\t{model.fingerprint.hex()}\t{rate}\tdecoders: {', '.join(decoders)}{trained}\t{text}")
    return 0


def cmd_train(argv: list[str]) -> int:
    import torch

    from .config import build_model, parse
    from .train import train

    cfg = parse(argv)
    model_cfg = cfg.model.as_dict()
    torch.manual_seed(cfg.train.seed)  # the initial weights are part of a reproducible run
    model = build_model(model_cfg)
    path = train(model, model_cfg, cfg.train)
    print(f"trained model: {path}")
    return 0


def cmd_bench(args) -> int:
    import json

    from .files import check_writable, write_atomic

    if args.json:
        check_writable(Path(args.json), args.force)

    def progress(line):
        print(line, file=sys.stderr, flush=True)
    if args.what == "codec":
        from .bench import codec as bench
        if not args.data:
            raise MrtlabError("bench codec needs --data FOLDER (e.g. the Kodak images)")
        rows = bench.run(args.model, args.data, args.limit, args.threads,
                         args.compressai_python, not args.no_compressai, progress, args.weights)
        print(bench.table(rows))
    if args.what == "train":
        from .bench import train as bench
        if not args.config:
            raise MrtlabError("bench train needs --config RECIPE.yaml")
        rows = bench.run(args.config, bench.parse_variants(args.variant or []), args.steps,
                         args.warmup, args.rounds, progress)
        print(bench.table(rows))
    if args.what == "gpu":  # fla checked against the CPU ops, then training throughput
        from .bench import gpu as bench
        rows = bench.run(bench.Settings(args.config or bench.RECIPE, args.steps, args.batch_size,
                                        args.crop, args.gpu_dim, args.layers, full=args.full),
                         progress)
        print(bench.table(rows))
    if args.what == "mixers":
        from .bench import mixers as bench
        rows = bench.run(mixers=args.mixers or bench.all_mixers(), lengths=args.lengths or bench.LENGTHS,
                         dim=args.dim, repeat=args.repeat, device=args.device, budget=args.budget,
                         ops_T=args.ops_T, progress=progress)
        print(bench.table(rows))
    if args.json:
        write_atomic(args.json, json.dumps(rows, indent=1), force=True)  # checked before the run
        print(f"results: {args.json}")
    return 0


def number_list(text: str, kind, option: str) -> list:
    """``1,2,4`` → ``[1, 2, 4]`` with a one-line error for anything else."""
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values:
        raise MrtlabError(f"{option}: expected a comma-separated list of numbers, got {text!r}")
    return values


def cmd_eval(args) -> int:
    from .errors import need
    from .eval import run
    from .eval.baselines import PillowCodec
    from .eval.curves import reference_curves
    from .eval.metrics import check_names
    from .files import check_writable

    images = run.list_images(args.data)[:args.limit]
    names = check_names(args.metrics.split(","), run.METRICS) if args.metrics else list(run.METRICS)
    packages = [run.PACKAGES[n] for n in names if n in run.PACKAGES]
    for package in packages + (["matplotlib"] if args.report else []):
        need(package)  # before the long run, not at its first image or at the report
    out = Path(args.out)
    for f in (out, run.per_image_path(out)):
        check_writable(f, args.force)
    refs = reference_curves(args.reference) if args.reference else []
    if args.baseline:
        if args.model:
            raise MrtlabError("give either --model or --baseline, not both")
        if args.tokens:
            raise MrtlabError("--tokens is a model's rate; a baseline takes --bpp")
        if args.decoder:
            raise MrtlabError("--decoder picks a model's decoder; a baseline has none")
        codec = PillowCodec(args.baseline, number_list(args.bpp, float, "--bpp") if args.bpp else [])
    else:
        from .zoo import load_model

        if args.bpp:
            raise MrtlabError("--bpp sets the targets of a baseline (--baseline jpeg|webp)")
        tokens = number_list(args.tokens, int, "--tokens") if args.tokens else None
        codec = run.ModelCodec(load_model(args.model, args.decoder, weights=args.weights), tokens)
    report = None
    if args.report:
        from .eval.report import Report
        report = Report(args.report, force=args.force)
    result = run.evaluate(codec, images, names, weights=args.weights, report=report,
                          progress=not args.quiet, data_name=str(args.data))
    if result is None:  # not the main process of an `accelerate launch`
        return 0
    summary = result["summary"]
    for metric, reason in summary["skipped"].items():
        print(f"mrtlab: note: {metric} skipped: {reason}", file=sys.stderr)
    paths = run.write(result, out)
    print(run.table(summary))
    print(f"results: {paths[0]}  per image: {paths[1]}")
    if report is not None:
        print(f"report: {report.write(summary, result['rows'], refs)}")
    return 0


def cmd_ablate(args) -> int:
    from .ablate import run_grid

    if args.jobs is not None and args.jobs < 1:
        raise MrtlabError("--jobs must be at least 1")
    res = run_grid(args.grid, args.jobs, progress=not args.quiet,
                   log=lambda line: print(line, file=sys.stderr, flush=True))
    paths = res["paths"]
    print(f"table: {paths['markdown']}  {paths['csv']}  {paths['json']}")
    for plot in paths["plots"]:
        print(f"plot: {plot}")
    if res["failures"]:
        fail(f"{len(res['failures'])} of {res['runs']} runs or evaluations failed")
        return 1
    return 0


def cmd_bdrate(args) -> int:
    from .eval.bdrate import bd_rate
    from .eval.curves import load

    if len(args.files) < 2:
        raise MrtlabError("bdrate needs an anchor and at least one test (bdrate A.json B.json)")
    metric = {"msssim": "ms-ssim", "ms_ssim": "ms-ssim"}.get(args.metric, args.metric)
    anchor, *tests = [load(f) for f in args.files]
    for test in tests:
        value, notes = bd_rate(anchor, test, metric, args.method, args.max_bpp, args.pareto)
        for note in notes:
            print(f"mrtlab: note: {note}", file=sys.stderr)
        value = round(value, 2) + 0.0  # no "-0.00"
        word = "fewer" if value < 0 else "more" if value > 0 else "as many"
        within = f", ≤ {args.max_bpp} bpp" if args.max_bpp is not None else ""
        print(f"BD-rate of {test.name} against {anchor.name} ({metric}{within}): {value:+.2f} %"
              f"  ({word} bits for the same {metric})")
    return 0


def cmd_plot(args) -> int:
    from .eval.curves import load, reference_curves
    from .eval.plot import plot
    from .files import check_writable

    check_writable(Path(args.output), args.force)
    curves = [load(f) for f in args.files] + (reference_curves(args.reference) if args.reference else [])
    metrics = args.metric.split(",") if args.metric else None
    out = plot(curves, args.output, metrics, title=args.title, logx=args.logx, max_bpp=args.max_bpp)
    print(f"plot: {out}")
    return 0


WEIGHTS_HELP = ("folder of the pretrained weights files: the TAEF2 autoencoder of the taef2 model "
                "(and LPIPS/DISTS/FID backbones for eval; default: $MRTLAB_WEIGHTS, else torch's hub cache)")
DECODER_HELP = ("which decoder of the model reads the file: a model's coder side (encoder, "
                "quantizer, entropy model) writes the bits, and any decoder trained on it reads "
                "them; 'fidelity' is the model's own (trained for MSE), others are files beside "
                "it, e.g. 'realism' (trained for perceptual quality); `mrtlab models` lists them")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="mrtlab", description=__doc__, epilog=(
        "Every command takes --plugin MODULE (repeatable): a module name or a .py file whose parts "
        "(@register) become short names; also $MRTLAB_PLUGINS (comma-separated) and installed "
        "packages' entry points in the group mrtlab.plugins (docs/plugins.md)."))
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compress", help="images → .mrt files")
    c.add_argument("images", nargs="+")
    c.add_argument("-o", "--output", help="output folder (or file name for one image)")
    c.add_argument("-m", "--model", help="bundled model name or weights path (default: the bundled default)")
    c.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    rate = c.add_mutually_exclusive_group()
    rate.add_argument("--tokens", type=int, help="latent tokens kept per window (variable-rate "
                      "models; default: all)")
    rate.add_argument("--bpp", type=float, help="target rate: the most tokens per window whose "
                      "file stays within it (variable-rate models)")
    c.add_argument("--weights", help=WEIGHTS_HELP)
    d = sub.add_parser("decompress", help=".mrt files → PNG")
    d.add_argument("files", nargs="+")
    d.add_argument("-o", "--output", help="output folder (or file name for one file)")
    d.add_argument("-m", "--model", help="model (default: the bundled model that wrote the file)")
    d.add_argument("--decoder", default="fidelity", metavar="NAME", help=DECODER_HELP + " (default: %(default)s)")
    d.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    d.add_argument("--weights", help=WEIGHTS_HELP)
    i = sub.add_parser("info", help="print the header of .mrt files")
    i.add_argument("files", nargs="+")
    sub.add_parser("models", help="list the bundled models")
    b = sub.add_parser("bench", help="benchmarks: bench mixers|codec|train|gpu --json OUT.json")
    b.add_argument("what", choices=["mixers", "codec", "train", "gpu"])
    g = b.add_argument_group("gpu (docs/gpu.md; --config: default recipes/mrt/paper.yaml, --steps)")
    g.add_argument("--batch-size", type=int, default=16, help="gpu: crops per step")
    g.add_argument("--crop", type=int, default=256, help="gpu: crop size")
    g.add_argument("--gpu-dim", type=int, help="gpu: model width (default: the recipe's)")
    g.add_argument("--layers", type=int, help="gpu: encoder, decoder and RCM layers")
    g.add_argument("--full", action="store_true", help="gpu: every check, also without CUDA")
    b.add_argument("--json", help="write the rows to this JSON file")
    b.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    b.add_argument("--mixers", nargs="+", help="default: every global mixer, a plugin's included")
    b.add_argument("--lengths", nargs="+", type=int, help="window counts T (squares)")
    b.add_argument("--dim", type=int, default=256)
    b.add_argument("--repeat", type=int, default=3)
    b.add_argument("--device", default="cpu")
    b.add_argument("--budget", type=float, default=120.0,
                   help="skip a size predicted to take longer than this many seconds")
    b.add_argument("--ops-T", dest="ops_T", type=int, default=4096,
                   help="T of the chunked-vs-recurrent op comparison (0: skip)")
    b.add_argument("-m", "--model", help="codec: model to time, or several separated by commas "
                   "(e.g. default,taef2; default: the bundled default)")
    b.add_argument("--data", help="codec: the folder of images to time (e.g. the 24 Kodak images)")
    b.add_argument("--limit", type=int, help="codec: only the first N images")
    b.add_argument("--threads", type=int, default=2, help="codec: torch threads (both codecs)")
    b.add_argument("--compressai-python", help="codec: interpreter with compressai installed "
                   "(default: $MRTLAB_COMPRESSAI_PYTHON, else .venv-compressai/bin/python in the "
                   "current folder or the project root, else this one)")
    b.add_argument("--no-compressai", action="store_true", help="codec: skip compressai")
    b.add_argument("--weights", help="codec: " + WEIGHTS_HELP)
    b.add_argument("--config", help="train, gpu: the recipe to time")
    b.add_argument("--variant", action="append", metavar="NAME=--KEY=VALUE[,...]",
                   help="train: a variant of the recipe (repeatable); the recipe as given runs too")
    b.add_argument("--steps", type=int, default=12, help="train, gpu: steps per run")
    b.add_argument("--warmup", type=int, default=4, help="train: steps left out of the timing")
    b.add_argument("--rounds", type=int, default=2, help="train: interleaved runs of every variant")
    e = sub.add_parser("eval", help="metrics on real bitstreams: eval --data DIR [--model M] --out results.json")
    e.add_argument("--data", required=True, help="folder of images")
    e.add_argument("-m", "--model", help="bundled model name or weights path (default: the bundled default)")
    e.add_argument("--decoder", metavar="NAME", help=DECODER_HELP + " (default: fidelity)")
    e.add_argument("--baseline", choices=["jpeg", "webp"], help="evaluate Pillow JPEG/WebP instead")
    e.add_argument("--bpp", help="target rates of a baseline, e.g. 0.05,0.1,0.2")
    e.add_argument("--tokens", help="latent tokens per window, one rate point each, e.g. 1,2,4")
    e.add_argument("-o", "--out", default="results.json", help="results file (per-image rows beside it)")
    e.add_argument("--report", help="write an HTML report into this folder")
    e.add_argument("--reference", help="dataset of the published curves drawn in the report "
                   "(kodak, clic2020, clic2020test, clic2020diffeic)")
    e.add_argument("--metrics", help="subset of psnr,lowpass-psnr,ms-ssim,seam,lpips,dists,fid (default: all; "
                   "lowpass-psnr: PSNR of both images area-downsampled by 16, colour and layout; "
                   "seam: the seam index at 8, 16, 32 px and the codec's own periods)")
    e.add_argument("--weights", help=WEIGHTS_HELP)
    e.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    e.add_argument("--limit", type=int, help="only the first N images (in name order)")
    e.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    bd = sub.add_parser("bdrate", help="BD-rate of results files against the first: bdrate A.json B.json")
    bd.add_argument("files", nargs="+", help="anchor, then one or more tests (files or reference names)")
    bd.add_argument("--metric", default="psnr", help="psnr, ms-ssim, lpips, dists, fid or kid")
    bd.add_argument("--method", default="pchip", help="interpolation: pchip (default), akima, cubic")
    bd.add_argument("--max-bpp", type=float, help="use only the rate points at or below this bpp")
    bd.add_argument("--pareto", action="store_true",
                    help="use only each curve's non-dominated points (none better with fewer bits)")
    pl = sub.add_parser("plot", help="RD curves: plot A.json B.json ... -o rd.png")
    pl.add_argument("files", nargs="*", help="results files or reference names")
    pl.add_argument("-o", "--output", default="rd.png", help="image file (.png, .svg, .pdf)")
    pl.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    pl.add_argument("--metric", help="comma-separated metrics (default: every one present)")
    pl.add_argument("--reference", help="add the published curves of a dataset "
                    "(kodak, clic2020, clic2020test, clic2020diffeic)")
    pl.add_argument("--title")
    pl.add_argument("--logx", action="store_true", help="logarithmic bpp axis")
    pl.add_argument("--max-bpp", type=float, help="draw only the points at or below this bpp")
    sub.add_parser("train", help="train from a recipe: train --config RECIPE.yaml [--key value ...]",
                   add_help=False)
    a = sub.add_parser("ablate", help="train and evaluate an ablation grid, and tabulate it: ablate GRID.yaml "
                       "(docs/ablations.md)")
    a.add_argument("grid", help="the grid: base recipe, axes of overrides, control, seeds, budget, eval")
    a.add_argument("-j", "--jobs", type=int, help="runs at once, the cores split between them (default: the grid's)")
    a.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    add_weights_parser(sub)
    return p


def add_weights_parser(sub) -> None:
    w = sub.add_parser("weights", help="the pretrained networks (LPIPS, DISTS, FID backbones; TAEF2): "
                       "weights list | import FILE_OR_DIR | download [NAMES]")
    w.add_argument("action", choices=["list", "import", "download"])
    w.add_argument("sources", nargs="*", metavar="FILE_OR_NAME",
                   help="import: weights files or folders; download: alexnet, vgg16, inception, "
                   "taef2_encoder, taef2_decoder (default: all)")
    w.add_argument("--weights", help="weights folder (default: $MRTLAB_WEIGHTS, else torch's hub cache)")
    w.add_argument("-f", "--force", action="store_true", help="replace an existing weights file")
    w.add_argument("--mirror", help="download: base URL of a mirror holding the files under their "
                   "official names, used instead of the official hosts")


def cmd_weights(args) -> int:
    """Lists, imports (after checking that the tensors load) or downloads the backbones."""
    from .pretrained import weights as W

    if args.action == "list":
        print("\n".join(W.status(args.weights)))
        return 0
    if args.action == "import":
        if not args.sources:
            raise MrtlabError("weights import needs a weights file or a folder of them")

        def one(src: Path):
            name, dst = W.import_file(src, args.weights, args.force)
            print(f"{src} -> {dst}  ({name}, for {W.METRICS[name]})")

        return each([f for src in args.sources for f in W.import_sources(Path(src))], one)
    names = args.sources or list(W.FILES)
    if unknown := [n for n in names if n not in W.FILES]:
        raise MrtlabError(f"unknown backbone {unknown[0]!r} (known: {', '.join(W.FILES)})")
    return each(names, lambda n: print(f"{n.name} -> " + str(W.download(
        n.name, args.weights, args.force, args.mirror, progress=sys.stderr.isatty()))))


class Parser(argparse.ArgumentParser):
    """argparse with option errors as one line (``mrtlab: error: …``, exit 2), not a usage block."""

    def error(self, message: str):
        raise OptionError(f"{message} (see: {self.prog} --help)")


class OptionError(MrtlabError):
    """A command-line option that cannot be parsed: exit status 2, as argparse's."""


def _terminated(signum, frame):
    raise SystemExit(143)  # unwinds: temporary files are removed, no partial output is left


def plugin_options(argv: list[str]) -> tuple[list[str], list[str]]:
    """``--plugin MODULE`` (repeatable, anywhere, on every command, ``train`` included) taken
    out of ``argv``: (the plugins, the rest)."""
    specs, rest, it = [], [], iter(argv)
    for arg in it:
        if arg == "--plugin":
            spec = next(it, None)
            if spec is None:
                raise OptionError("--plugin needs a module name or a .py file")
            specs.append(spec)
        elif arg.startswith("--plugin="):
            specs.append(arg.partition("=")[2])
        else:
            rest.append(arg)
    return specs, rest


def show_warning(message, category, *args, **kwargs):
    """mrtlab's own warnings as one line; others as Python shows them."""
    if issubclass(category, MrtlabWarning):
        print(f"mrtlab: warning: {message}", file=sys.stderr)
    else:
        _python_showwarning(message, category, *args, **kwargs)


def main(argv: list[str] | None = None) -> int:
    import signal

    argv = sys.argv[1:] if argv is None else argv
    with contextlib.suppress(ValueError):  # ValueError: not the main thread (a caller's own)
        signal.signal(signal.SIGTERM, _terminated)
    warnings.showwarning = show_warning
    try:
        specs, argv = plugin_options(argv)
        from .plugins import load_all
        load_all(specs)
        if argv[:1] == ["train"]:
            return cmd_train(argv[1:])
        args = build_parser().parse_args(argv)
        return {"compress": cmd_compress, "decompress": cmd_decompress, "info": cmd_info,
                "models": cmd_models, "bench": cmd_bench, "eval": cmd_eval, "bdrate": cmd_bdrate,
                "plot": cmd_plot, "weights": cmd_weights, "ablate": cmd_ablate}[args.command](args)
    except MrtlabError as e:
        fail(str(e))
        return 2 if isinstance(e, OptionError) else 1
    except KeyboardInterrupt:
        fail("interrupted")
        return 130
    except Exception as e:  # never a traceback for the user; MRTLAB_DEBUG=1 shows it
        if os.environ.get("MRTLAB_DEBUG"):
            raise
        fail(f"internal error ({type(e).__name__}: {e}); rerun with MRTLAB_DEBUG=1 for details")
        return 70
    finally:
        end_process_group()


def end_process_group() -> None:
    """Under torchrun (train, eval): end the process group before exiting, whatever the
    command did; a rank that exits with it alive can abort ("terminate called without an
    active exception"). Looked up in sys.modules, so other commands never import torch here."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
