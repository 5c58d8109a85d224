"""Two DDP processes on CPU (gloo), started by torchrun as ``accelerate launch`` starts them."""
import json
import os
import subprocess
import textwrap

import pytest
import torch
from safetensors.torch import load_file

from .helpers import TINY, image_folder, read_log, two_processes

SCRIPT = """
import json, os, sys, torch
from safetensors.torch import save_file
from mrtlab.config import build_model
from mrtlab.train import TrainConfig, train

cfg, out = json.loads(sys.argv[1]), sys.argv[2]
rank = int(os.environ["RANK"])
torch.manual_seed(rank)  # different initial weights on purpose: DDP must make them one
model = build_model(cfg)
train(model, cfg, TrainConfig(**json.loads(sys.argv[3])))
save_file({n: p.detach().contiguous() for n, p in model.named_parameters()}, f"{out}/rank{rank}.safetensors")
"""


@pytest.mark.slow
def test_two_processes_keep_identical_replicas(tmp_path):
    folder = image_folder(tmp_path / "data", size=64)
    (tmp_path / "run.py").write_text(textwrap.dedent(SCRIPT))
    out = tmp_path / "out"
    settings = dict(data=str(folder), crop=32, batch_size=2, steps=3, warmup=1, log_every=1,
                    out=str(out), rate_weight=0.5, grad_accum=2, adv=0.1, tensorboard=False)
    cmd = two_processes(tmp_path / "run.py", json.dumps(TINY), out, json.dumps(settings))
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    a, b = load_file(str(out / "rank0.safetensors")), load_file(str(out / "rank1.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    torch.manual_seed(0)
    from mrtlab.config import build_model
    assert not torch.equal(a["to_latent.1.weight"], build_model(TINY).to_latent[1].weight)  # trained
    assert [r["step"] for r in read_log(out)] == [1, 2, 3]  # one log, from the main process
