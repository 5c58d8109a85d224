"""Training data: crops by sample index, shards per process, bad files skipped."""
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from mrtlab.errors import MrtlabError
from mrtlab.train.data import RandomCrops, ShardSampler, validation_images

from .helpers import image_folder


def shard_indices(*args) -> list[int]:
    return list(ShardSampler(*args))


@pytest.mark.parametrize("processes,accum", [(1, 1), (2, 1), (2, 3), (4, 2)])
def test_shards_cover_every_sample_once(processes, accum):
    B, start, steps = 3, 2, 7
    shards = [shard_indices(start, steps, B, accum, r, processes) for r in range(processes)]
    every = sorted(i for s in shards for i in s)
    assert every == list(range(start * B * accum * processes, steps * B * accum * processes))
    if processes == 1 and accum == 1:  # the order of a single process is the plain one
        assert shards[0] == list(range(start * B, steps * B))


def test_resumed_shard_is_the_tail_of_the_full_one():
    full = shard_indices(0, 10, 2, 2, 1, 2)
    assert shard_indices(4, 10, 2, 2, 1, 2) == full[4 * 2 * 2:]


def test_sampler_is_lazy_at_any_scale():
    sampler = ShardSampler(0, 10 ** 9, 64, 2, 3, 8)  # a list of its indices would not fit in memory
    assert len(sampler) == 10 ** 9 * 2 * 64
    it = iter(sampler)
    assert [next(it) for _ in range(66)] == list(range(3 * 64, 4 * 64)) + list(range(11 * 64, 11 * 64 + 2))
    assert len(ShardSampler(5, 7, 3, 2, 0, 1)) == len(shard_indices(5, 7, 3, 2, 0, 1)) == 12


def test_bad_and_small_images_are_skipped(tmp_path, caplog):
    folder = image_folder(tmp_path / "d", size=80, n=1)
    Image.fromarray(np.zeros((20, 90, 3), np.uint8)).save(folder / "small.png")
    (folder / "garbage.png").write_bytes(b"not an image at all")
    good = (folder / "astronaut.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 3])  # header fine, data cut
    with caplog.at_level(logging.INFO):
        ds = RandomCrops(folder, crop=32, seed=1)
        crops = [ds[i] for i in range(40)]
    assert sorted(p.name for p in ds.files) == ["astronaut.jpg", "truncated.jpg"]
    assert any("garbage.png" in r.getMessage() for r in caplog.records)
    assert any("small.png" in r.getMessage() for r in caplog.records)
    assert any("truncated" in r.getMessage() for r in caplog.records)
    assert all(c.shape == (3, 32, 32) and 0 <= c.min() and c.max() <= 1 for c in crops)
    assert torch.equal(ds[7], RandomCrops(folder, crop=32, seed=1)[7])  # by index, not by history
    assert not torch.equal(ds[7], RandomCrops(folder, crop=32, seed=2)[7])


def test_no_usable_image_is_one_clear_error(tmp_path):
    folder = image_folder(tmp_path / "d", size=24, n=2)
    with pytest.raises(MrtlabError, match="no usable training image of at least 32"):
        RandomCrops(folder, crop=32)
    with pytest.raises(MrtlabError, match="does not exist"):
        RandomCrops(tmp_path / "nowhere", crop=32)


def test_validation_images_are_whole_and_limited(tmp_path):
    folder = image_folder(tmp_path / "v", size=50, n=3)
    (folder / "a_broken.png").write_bytes(b"\x89PNG broken")
    images = validation_images(folder, 2)
    assert len(images) == 2 and all(img.shape == (50, 50, 3) for _, img in images)


def test_data_may_be_several_folders(tmp_path):
    from PIL import Image

    from mrtlab.errors import MrtlabError
    from mrtlab.train.data import image_files
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / name / f"{name}.png")
    files = image_files([tmp_path / "a", tmp_path / "b"])
    assert [f.name for f in files] == ["a.png", "b.png"]
    with pytest.raises(MrtlabError, match="does not exist"):
        image_files([tmp_path / "a", tmp_path / "nope"])
