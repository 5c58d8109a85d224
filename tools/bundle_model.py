"""Ship a trained model in the package: write its weights as float16 (half the size; they
load back as float32) and its recipe into ``mrtlab/zoo/bundled/NAME.*``; or, with
``--decoder``, only the decoder of a stage-2 model fine-tuned from the bundled NAME.

    python tools/bundle_model.py runs/default/model.safetensors default --force
    python tools/bundle_model.py runs/default-stage2/model.safetensors default --decoder realism

The name must be listed in ``mrtlab.zoo.catalog.BUNDLED``. A decoder is written beside the
bundled model as ``NAME.decoder-DECODER.safetensors`` (its decoder-side tensors only); the
stage-2 model must have the bundled model's coder fingerprint (stage 2 froze everything
that writes the file). Evaluate the bundled copy (it is the one users get):
``mrtlab eval --model NAME [--decoder DECODER] ...``.
"""
from __future__ import annotations

import argparse
import sys

from mrtlab.errors import MrtlabError
from mrtlab.zoo import catalog, list_decoders, write_decoder
from mrtlab.zoo.catalog import trained_of
from mrtlab.zoo.model_files import load_model, save_model


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights", help="a trained model's .safetensors (its .yaml beside it)")
    ap.add_argument("name", choices=sorted(catalog.BUNDLED))
    ap.add_argument("--decoder", metavar="DECODER",
                    help="write only the decoder of WEIGHTS, a stage-2 model of the bundled NAME, under this name")
    ap.add_argument("--force", action="store_true", help="replace the bundled model or decoder of that name")
    args = ap.parse_args(argv)
    try:
        if args.decoder:
            bundle_decoder(args)
        else:
            bundle_model(args)
    except MrtlabError as e:
        sys.exit(f"bundle_model: error: {e}")


def bundle_model(args) -> None:
    stem = catalog.BUNDLED_DIR / args.name
    if stem.with_suffix(".safetensors").exists() and not args.force:
        raise MrtlabError(f"{stem}.safetensors exists; pass --force to replace it")
    model = load_model(args.weights)
    path = save_model(model, model.config, stem, half=True, trained=trained_of(args.weights))
    shipped = load_model(args.name)
    print(f"{path}: {path.stat().st_size / 1e6:.1f} MB, fingerprint {shipped.fingerprint.hex()}, "
          f"trained {trained_of(path) or 'for an unrecorded time'}")
    for decoder in list_decoders(args.name)[1:]:
        try:
            load_model(args.name, decoder)
        except MrtlabError as e:  # trained for the model replaced: bundle it again or remove it
            print(f"bundle_model: note: {e}", file=sys.stderr)


def bundle_decoder(args) -> None:
    base, tuned = load_model(args.name), load_model(args.weights)
    path = write_decoder(base, catalog.BUNDLED_DIR / f"{args.name}.safetensors", tuned, args.decoder, args.force,
                         base_label=f"the bundled {args.name}")
    shipped = load_model(args.name, args.decoder)
    print(f"{path}: {path.stat().st_size / 1e6:.1f} MB, decoder {args.decoder} {shipped.decoder_hash} "
          f"of {args.name} (fingerprint {shipped.fingerprint.hex()})")


if __name__ == "__main__":
    main()
