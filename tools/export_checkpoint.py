"""Export a run's last checkpoint as a model file while the run is still going (or was
stopped): the weights that the run would export (the EMA's when it keeps one), so that a
long run can be evaluated part way without waiting for its end.

    python tools/export_checkpoint.py runs/default runs/snapshots/default-step5000

writes ``STEM.safetensors`` + ``STEM.yaml`` (not over existing files without --force) and
prints the step and CPU-seconds the checkpoint had reached.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mrtlab.errors import MrtlabError

EMA_FILE = "custom_checkpoint_0.pkl"   # Accelerate's name for the first registered object


def export_checkpoint(run: Path, stem: Path) -> dict:
    """Write the model of ``run``'s checkpoint to ``stem``; returns its ``step.json``."""
    import torch
    from safetensors.torch import load_file

    from mrtlab.config import build_model
    from mrtlab.train.loop import export

    state = run / "state"
    try:
        recipe = json.loads((state / "recipe.json").read_text())
        done = json.loads((state / "step.json").read_text())
    except (OSError, ValueError) as e:
        raise MrtlabError(f"{run} has no readable checkpoint ({e})") from None
    model_cfg = recipe["model"]
    model = build_model(model_cfg)
    if recipe["train"].get("ema") and (state / EMA_FILE).is_file():
        ema = torch.load(state / EMA_FILE, map_location="cpu", weights_only=True)
        weights = {k.removeprefix("model."): v for k, v in ema.items() if k.startswith("model.")}
    else:
        weights = load_file(str(state / "model.safetensors"))
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise MrtlabError(f"{run}'s checkpoint does not fit its recipe's model: {str(e).splitlines()[0]}") from None
    export(model, model_cfg, stem)
    return done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a run folder (train.out) with a state/ checkpoint")
    p.add_argument("stem", type=Path, help="where to write STEM.safetensors and STEM.yaml")
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)
    try:
        stem = args.stem.with_suffix("") if args.stem.suffix == ".safetensors" else args.stem
        if stem.with_suffix(".safetensors").exists() and not args.force:
            raise MrtlabError(f"{stem.with_suffix('.safetensors')} exists; pass --force to replace it")
        stem.parent.mkdir(parents=True, exist_ok=True)
        done = export_checkpoint(args.run, stem)
    except MrtlabError as e:
        print(f"export_checkpoint: error: {e}", file=sys.stderr)
        return 1
    print(f"{stem.with_suffix('.safetensors')}: step {done['step']}, {done.get('cpu_s', 0):.0f} CPU-s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
