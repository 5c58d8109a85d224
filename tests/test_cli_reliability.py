"""What a careless user does: outputs that collide or already exist, writes that fail, batches
with a bad file, photos from phones and scanners. Each is one line, and no file is lost or
left half-written."""
import os
import resource
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mrtlab.codec import load_rgb

from .helpers import one_error_line, run, smooth_image


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "in" / "photo.png"
    path.parent.mkdir()
    Image.fromarray(smooth_image(40, 56)).save(path)
    return path


def no_partial_files(folder):
    return not [p for p in folder.rglob(".*.part")]


def test_two_inputs_that_map_to_one_output_are_refused_before_any_work(tmp_path, photo, tiny_model_file, capsys):
    other = tmp_path / "other" / "photo.jpg"
    other.parent.mkdir()
    Image.fromarray(smooth_image(40, 56)).save(other)
    code, _, err = run(capsys, "compress", photo, other, "-o", tmp_path / "out", "-m", tiny_model_file, "--force")
    assert code == 1 and "would both be written to" in one_error_line(err)
    assert not (tmp_path / "out").exists()


def test_force_never_overwrites_an_input(tmp_path, tiny_model_file, capsys):
    src = tmp_path / "shot.mrt"   # an image whose name ends in .mrt: its output would be itself
    Image.fromarray(smooth_image(16, 16)).save(src, format="PNG")
    before = src.read_bytes()
    code, _, err = run(capsys, "compress", src, "-o", tmp_path, "-m", tiny_model_file, "--force")
    assert code == 1 and "is one of the inputs" in one_error_line(err)
    assert src.read_bytes() == before


def test_one_output_file_name_for_several_inputs_is_refused(tmp_path, photo, tiny_model_file, capsys):
    other = tmp_path / "in" / "b.png"
    Image.fromarray(smooth_image(16, 16)).save(other)
    code, _, err = run(capsys, "compress", photo, other, "-o", tmp_path / "x.mrt", "-m", tiny_model_file)
    assert code == 1 and "names one file, but several inputs were given" in one_error_line(err)
    assert not (tmp_path / "x.mrt").exists()


def test_an_output_that_appears_during_the_work_is_kept(tmp_path, photo, tiny_model_file, capsys, monkeypatch):
    from mrtlab.codec import codec

    dst = tmp_path / "photo.mrt"
    real = codec.encode_rates

    def racing(*args, **kwargs):      # another run writes the same output meanwhile
        dst.write_bytes(b"the other run's file")
        return real(*args, **kwargs)
    monkeypatch.setattr(codec, "encode_rates", racing)
    code, _, err = run(capsys, "compress", photo, "-o", dst, "-m", tiny_model_file)
    assert code == 1 and "appeared while this ran" in one_error_line(err)
    assert dst.read_bytes() == b"the other run's file" and no_partial_files(tmp_path)


def test_a_failed_write_leaves_nothing_under_the_final_name(tmp_path, photo, tiny_model_file):
    """``ulimit -f``: the PNG cannot be written whole; the error names the file, and a rerun
    is not blocked by a truncated file."""
    code, mrt = 0, tmp_path / "photo.mrt"
    subprocess.run([sys.executable, "-m", "mrtlab.cli", "compress", str(photo), "-o", str(mrt),
                    "-m", str(tiny_model_file)], check=True, capture_output=True)

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))
    proc = subprocess.run([sys.executable, "-m", "mrtlab.cli", "decompress", str(mrt), "-o", str(tmp_path / "out"),
                           "-m", str(tiny_model_file)], capture_output=True, text=True, preexec_fn=small_files)
    assert proc.returncode == 1, proc.stderr
    assert one_error_line(proc.stderr).startswith(f"mrtlab: error: cannot write {tmp_path / 'out' / 'photo.png'}: ")
    assert not (tmp_path / "out" / "photo.png").exists() and no_partial_files(tmp_path)
    assert code == 0


def test_a_batch_goes_on_after_a_bad_file_and_counts_the_failures(tmp_path, photo, tiny_model_file, capsys):
    code, _, err = run(capsys, "compress", photo, "-o", tmp_path / "c", "-m", tiny_model_file)
    assert code == 0, err
    bad = tmp_path / "c" / "bad.mrt"
    good = tmp_path / "c" / "photo.mrt"
    data = bytearray(good.read_bytes())
    data[-1] ^= 1
    bad.write_bytes(bytes(data))
    code, out, err = run(capsys, "decompress", bad, good, "-o", tmp_path / "d", "-m", tiny_model_file)
    lines = err.splitlines()
    assert code == 1 and len(lines) == 2 and str(bad) in lines[0] and "checksum" in lines[0]
    assert lines[1] == "mrtlab: error: 1 of 2 files failed"
    assert (tmp_path / "d" / "photo.png").is_file() and not (tmp_path / "d" / "bad.png").exists()


def test_option_errors_are_one_line_with_exit_2(capsys):
    for argv in (["compress", "--tokens", "x", "a.png"], ["frobnicate"], ["decompress"]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and "see: mrtlab" in one_error_line(err), argv


def test_a_fifo_is_refused_not_waited_on(tmp_path, capsys):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    code, _, err = run(capsys, "compress", fifo, "-o", tmp_path)
    assert code == 1 and "not a regular file" in one_error_line(err)
    os.mkfifo(tmp_path / "pipe.mrt")
    code, _, err = run(capsys, "decompress", tmp_path / "pipe.mrt", "-o", tmp_path / "out")
    assert code == 1 and "not a regular file" in one_error_line(err)


def test_exif_orientation_is_applied_with_a_note(tmp_path):
    rgb = smooth_image(20, 36)
    exif = Image.Exif()
    exif[0x0112] = 6   # "rotate 90° clockwise to view": a phone held upright
    Image.fromarray(rgb).save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    upright, note = load_rgb(tmp_path / "phone.jpg")
    assert upright.shape == (36, 20, 3) and note == "turned upright (EXIF orientation 6)"
    stored = np.asarray(Image.open(tmp_path / "phone.jpg").convert("RGB"))
    assert np.array_equal(upright, np.rot90(stored, k=-1))


def test_an_animation_gives_its_first_frame_with_a_note(tmp_path):
    frames = [Image.new("RGB", (8, 6), (255 * (i == 0), 100 * i, 255 * (i > 0))) for i in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    rgb, note = load_rgb(tmp_path / "anim.gif")
    assert note == "the first of its 3 frames taken; converted P to RGB"
    assert rgb[0, 0, 0] > 200 and rgb[0, 0, 2] < 50


def test_16_bit_rgb_and_float_images_convert_with_a_note(tmp_path):
    import struct
    import zlib

    a = (np.arange(4 * 4 * 3).reshape(4, 4, 3) * 1300).astype(np.uint16)
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in a)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", 4, 4, 16, 2, 0, 0, 0)   # 16 bits per channel, RGB
    (tmp_path / "deep.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                                        + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    rgb, note = load_rgb(tmp_path / "deep.png")
    assert note == "converted 16-bit RGB to 8 bits per channel"
    assert np.abs(rgb.astype(int) - np.round(a / 257)).max() <= 1

    f = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    Image.fromarray(f, mode="F").save(tmp_path / "float.tif")
    rgb, note = load_rgb(tmp_path / "float.tif")
    assert "floating-point grayscale in 0…1" in note
    assert rgb[..., 0].max() == 255 and np.abs(rgb[..., 0] / 255 - f).max() <= 0.5 / 255 + 1e-6


def test_a_results_file_with_nan_is_one_line(tmp_path, capsys):
    (tmp_path / "a.json").write_text('{"name": "a", "results": {"bpp": [0.1, 0.2], "psnr": [NaN, 30.0]}}')
    code, _, err = run(capsys, "bdrate", "kodak_vtm", tmp_path / "a.json")
    assert code == 1 and "finite numbers" in one_error_line(err)


def test_running_out_of_memory_is_one_line_and_the_batch_goes_on(tmp_path, photo, tiny_model_file, capsys,
                                                                 monkeypatch):
    from mrtlab.codec import codec

    real, calls = codec.encode_rates, []

    def hungry(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: "
                               "you tried to allocate 40000000000 bytes")
        return real(*args, **kwargs)
    monkeypatch.setattr(codec, "encode_rates", hungry)
    other = tmp_path / "in" / "b.png"
    Image.fromarray(smooth_image(16, 16)).save(other)
    code, _, err = run(capsys, "compress", photo, other, "-o", tmp_path / "out", "-m", tiny_model_file)
    lines = err.splitlines()
    assert code == 1 and lines[0] == f"mrtlab: error: {photo}: not enough memory for this image with this model " \
                                      '(README, "Large photos")'
    assert (tmp_path / "out" / "b.mrt").is_file() and not (tmp_path / "out" / "photo.mrt").exists()
