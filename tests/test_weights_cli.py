"""``mrtlab weights list|import|download``: files are checked by loading them into their network,
nothing is overwritten without --force, and downloads (from a local HTTP server on 127.0.0.1
serving stand-in files; never the internet) are hash-checked and fail in one line."""
import functools
import hashlib
import http.server
import os
import socket
import threading
import urllib.error

import pytest
import torch

from mrtlab.cli import main
from mrtlab.eval import fid as F
from mrtlab.eval import metrics as M
from mrtlab.pretrained import weights as W


def shaped_like(module: torch.nn.Module) -> dict:
    """The module's state dict as zeros broadcast from one element: the real keys and shapes in
    a file of a few kB (torch.save stores the one-element storage)."""
    return {k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in module.state_dict().items()}


def network(backbone: str) -> torch.nn.Module:
    import torchvision
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    if backbone.startswith("taef2_"):
        from mrtlab.pretrained import taef2
        return taef2.BUILD[backbone.removeprefix("taef2_")]()
    with torch.device("meta"):
        if backbone != "inception":
            return getattr(torchvision.models, backbone)(weights=None)
        net = fe.FeatureExtractorInceptionV3.__new__(fe.FeatureExtractorInceptionV3)
        with pytest.MonkeyPatch.context() as mp:  # build it without its loader (it would download)
            mp.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
            mp.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda *a, **k: None)
            net.__init__("inception-v3-compat", ["2048"])
        return net


@pytest.fixture(scope="module")
def states():
    """Stand-ins as the files hold them: AlexNet/VGG-16 ``features.*`` only, Inception whole."""
    out = {n: shaped_like(network(n)) for n in W.FILES}
    for n in ("alexnet", "vgg16"):
        out[n] = {k: v for k, v in out[n].items() if k.startswith("features.")}
    return out


def run(capsys, *argv):
    code = main(["weights", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mrtlab: error: "), err
    return lines[0]


def test_official_sources_are_the_installed_packages():
    import torchvision.models as tv
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    imagenet = {"alexnet": tv.AlexNet_Weights.IMAGENET1K_V1.url,
                "vgg16": tv.VGG16_Weights.IMAGENET1K_V1.url, "inception": URL_INCEPTION_V3}
    assert {k: W.URLS[k] for k in imagenet} == imagenet
    for name in imagenet:
        assert W.URLS[name].rsplit("/", 1)[1] == W.FILES[name]  # the name torch.hub caches it under
    for part in ("encoder", "decoder"):   # TAEF2: one commit of its repository, whole sha256 pinned
        url = W.URLS[f"taef2_{part}"]
        assert url.startswith("https://raw.githubusercontent.com/madebyollin/taesd/5cccb12")
        assert url.endswith(f"/taef2_{part}.pth") and len(W.HASH_PREFIX[f"taef2_{part}"]) == 64
    for name in ("alexnet", "vgg16"):  # torchvision's check_hash=True takes the prefix from the name
        assert W.HASH_PREFIX[name] == torch.hub.HASH_REGEX.search(W.FILES[name]).group(1)


def test_list_missing_and_found(tmp_path, states, capsys, monkeypatch):
    monkeypatch.setenv(W.ENV, str(tmp_path))
    code, out, _ = run(capsys, "list")
    assert code == 0 and f"folder: {tmp_path} (from ${W.ENV})" in out
    for name, metric in [("alexnet", "lpips"), ("vgg16", "dists"), ("inception", "fid, kid")]:
        assert f"missing  for {metric}" in out and str(tmp_path / W.FILES[name]) in out
        assert f"mrtlab weights download {name}" in out
    torch.save(states["alexnet"], tmp_path / W.FILES["alexnet"])
    torch.save(states["alexnet"], tmp_path / W.FILES["vgg16"])  # AlexNet under VGG-16's name
    code, out, _ = run(capsys, "list", "--weights", tmp_path)
    assert code == 0 and "(from --weights)" in out
    alex = hashlib.sha256((tmp_path / W.FILES["alexnet"]).read_bytes()).hexdigest()
    assert f"sha256 {alex} (not the official download's bytes); loads into its network" in out
    assert "NOT USABLE" in out and "does not hold vgg16 weights" in out
    assert "inception  missing" in out


def test_import_checks_by_loading_and_never_overwrites(tmp_path, states, capsys):
    src, dst = tmp_path / "src", tmp_path / "weights"
    src.mkdir()
    torch.save(states["alexnet"], src / W.FILES["alexnet"])      # known by its name
    torch.save(states["vgg16"], src / "my-vgg.pt")               # known by its tensors
    torch.save(states["inception"], src / "inception.pth")
    (src / "notes.txt").write_text("not tried: not a torch file name")
    code, out, err = run(capsys, "import", src, "--weights", dst)
    assert code == 0, err
    for name, file in [("alexnet", W.FILES["alexnet"]), ("vgg16", "my-vgg.pt"), ("inception", "inception.pth")]:
        assert (dst / W.FILES[name]).read_bytes() == (src / file).read_bytes()
        assert f"{src / file} -> {dst / W.FILES[name]}  ({name}, for {W.METRICS[name]})" in out
    assert sorted(os.listdir(dst)) == sorted(W.FILES[n] for n in ("alexnet", "vgg16", "inception"))  # nothing else

    before = (dst / W.FILES["vgg16"]).read_bytes()
    torch.save({k: v + 0 for k, v in states["vgg16"].items()}, src / "my-vgg.pt")
    code, _, err = run(capsys, "import", src / "my-vgg.pt", "--weights", dst)
    assert code == 1 and one_error_line(err).endswith(f"{dst / W.FILES['vgg16']} exists (use --force to overwrite)")
    assert (dst / W.FILES["vgg16"]).read_bytes() == before
    code, _, err = run(capsys, "import", src / "my-vgg.pt", "--weights", dst, "--force")
    assert code == 0 and (dst / W.FILES["vgg16"]).read_bytes() == (src / "my-vgg.pt").read_bytes()


def test_import_accepts_a_whole_torchvision_state_dict(tmp_path, capsys):
    torch.save(shaped_like(network("alexnet")), tmp_path / "alexnet-full.pth")  # classifier too
    code, out, err = run(capsys, "import", tmp_path / "alexnet-full.pth", "--weights", tmp_path / "w")
    assert code == 0, err
    assert (tmp_path / "w" / W.FILES["alexnet"]).is_file()


@pytest.mark.parametrize("kind", ["not a state dict", "random bytes", "wrong shapes", "unknown tensors"])
def test_import_refuses_bad_files_in_one_line(tmp_path, states, capsys, kind):
    path = tmp_path / ("some.pth" if kind == "unknown tensors" else W.FILES["alexnet"])
    if kind == "not a state dict":
        torch.save([torch.zeros(2)], path)
    elif kind == "random bytes":
        path.write_bytes(os.urandom(2048))
    elif kind == "wrong shapes":
        torch.save({**states["alexnet"], "features.3.weight": torch.zeros(192, 64, 3, 3)}, path)
    else:
        torch.save({"encoder.weight": torch.zeros(4, 4)}, path)
    code, _, err = run(capsys, "import", path, "--weights", tmp_path / "w")
    line = one_error_line(err)
    assert code == 1 and str(path) in line and not (tmp_path / "w" / W.FILES["alexnet"]).exists()
    assert {"not a state dict": "are not a state dict (a list)", "random bytes": "not a plain tensor file",
            "wrong shapes": "does not hold alexnet weights (size mismatch for features.3.weight",
            "unknown tensors": "not weights of any of alexnet, vgg16, inception, taef2_encoder, taef2_decoder",
            }[kind] in line


def test_import_bad_arguments(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for argv, message in [(["import"], "needs a weights file"),
                          (["import", tmp_path / "nope.pth"], "no such file or folder"),
                          (["import", tmp_path / "empty"], "no .pth, .pt, .bin, .ckpt files"),
                          (["download", "resnet"], "unknown backbone 'resnet'"),
                          (["download", "vgg16", "--mirror", "no-scheme"], "cannot download no-scheme/vgg16")]:
        code, _, err = run(capsys, *argv, "--weights", tmp_path)
        assert code == 1 and message in one_error_line(err)


@pytest.fixture
def server(tmp_path, monkeypatch):
    """An HTTP server on 127.0.0.1 serving a folder (the mirror); yields (folder, url, requests)."""
    for var in ("no_proxy", "NO_PROXY"):  # loopback stays loopback whatever the proxy settings
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    folder, requests = tmp_path / "mirror", []
    folder.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}/", requests
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_download_from_a_mirror_checks_the_hash(server, tmp_path, capsys, monkeypatch):
    folder, url, requests = server
    dst = tmp_path / "weights"
    for name in ("alexnet", "vgg16"):
        (folder / W.FILES[name]).write_bytes(os.urandom(3000) + name.encode())
    # stand-ins are not torchvision's files: first their hash prefixes are the official ones
    code, _, err = run(capsys, "download", "alexnet", "--mirror", url, "--weights", dst)
    line = one_error_line(err)
    assert code == 1 and f"cannot download {url}{W.FILES['alexnet']}: invalid hash value" in line
    assert f'expected "{W.HASH_PREFIX["alexnet"]}"' in line
    assert not dst.exists() or os.listdir(dst) == []  # no final name, no partial file

    for name in ("alexnet", "vgg16"):  # now the expected prefixes are the stand-ins' own
        digest = hashlib.sha256((folder / W.FILES[name]).read_bytes()).hexdigest()
        monkeypatch.setitem(W.HASH_PREFIX, name, digest[:8])
    code, out, err = run(capsys, "download", "alexnet", "vgg16", "--mirror", url.rstrip("/"), "--weights", dst)
    assert code == 0, err
    for name in ("alexnet", "vgg16"):
        assert (dst / W.FILES[name]).read_bytes() == (folder / W.FILES[name]).read_bytes()
        assert f"{name} -> {dst / W.FILES[name]}" in out
    assert sorted(os.listdir(dst)) == sorted([W.FILES["alexnet"], W.FILES["vgg16"]])

    # an existing file is refused before anything is fetched; --force replaces it
    (dst / W.FILES["alexnet"]).write_bytes(b"mine")
    requests.clear()
    code, _, err = run(capsys, "download", "alexnet", "--mirror", url, "--weights", dst)
    assert code == 1 and one_error_line(err).endswith(f"{dst / W.FILES['alexnet']} exists (use --force to overwrite)")
    assert requests == [] and (dst / W.FILES["alexnet"]).read_bytes() == b"mine"
    code, _, err = run(capsys, "download", "alexnet", "--mirror", url, "--weights", dst, "--force")
    assert code == 0 and (dst / W.FILES["alexnet"]).read_bytes() == (folder / W.FILES["alexnet"]).read_bytes()


def test_download_of_inception_is_checked_by_loading(server, tmp_path, states, capsys):
    folder, url, _ = server
    dst = tmp_path / "weights"
    (folder / W.FILES["inception"]).write_bytes(os.urandom(3000))
    code, _, err = run(capsys, "download", "inception", "--mirror", url, "--weights", dst)
    line = one_error_line(err)
    assert code == 1 and f"downloaded {url}{W.FILES['inception']} is not usable: cannot read weights file:" in line
    assert os.listdir(dst) == []
    torch.save(states["inception"], folder / W.FILES["inception"])
    code, _, err = run(capsys, "download", "inception", "--mirror", url, "--weights", dst)
    assert code == 0, err
    assert (dst / W.FILES["inception"]).read_bytes() == (folder / W.FILES["inception"]).read_bytes()


def test_download_failures_are_one_line_naming_the_url(server, tmp_path, capsys):
    _, url, _ = server
    dst = tmp_path / "weights"
    code, _, err = run(capsys, "download", "vgg16", "--mirror", url + "missing/", "--weights", dst)
    assert code == 1 and f"cannot download {url}missing/{W.FILES['vgg16']}: HTTP Error 404" in one_error_line(err)
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    closed = f"http://127.0.0.1:{port}"
    code, _, err = run(capsys, "download", "alexnet", "--mirror", closed, "--weights", dst)
    line = one_error_line(err)
    assert code == 1 and f"cannot download {closed}/{W.FILES['alexnet']}: " in line and "refused" in line
    assert os.listdir(dst) == []


def test_download_defaults_to_the_official_url_and_the_hub_cache(tmp_path, capsys, monkeypatch):
    """Offline: the official URL is named in one line (the downloader is replaced: no network)."""
    calls = []

    def offline(url, dst, hash_prefix=None, progress=True):
        calls.append((url, dst, hash_prefix))
        raise urllib.error.URLError(OSError(101, "Network is unreachable"))

    monkeypatch.delenv(W.ENV, raising=False)
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    code, _, err = run(capsys, "download")
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == len(W.FILES) + 1 == 6 and lines[-1] == "mrtlab: error: 5 of 5 files failed"
    for line, (_name, url) in zip(lines, W.URLS.items()):
        assert line == f"mrtlab: error: cannot download {url}: <urlopen error [Errno 101] Network is unreachable>"
    assert [c[0] for c in calls] == list(W.URLS.values())
    assert [c[2] for c in calls] == ["7be5be79", "397923af", None, W.HASH_PREFIX["taef2_encoder"],
                                     W.HASH_PREFIX["taef2_decoder"]]
    cache = tmp_path / "hub" / "checkpoints"
    assert all(os.path.dirname(c[1]) in (str(cache), str(cache / "taef2")) for c in calls)
    assert [p for p in cache.rglob("*") if p.is_file()] == []


def test_eval_names_the_command_when_weights_are_missing(tmp_path):
    skipped = M.Perceptual(folder=tmp_path).skipped
    assert "mrtlab weights download alexnet" in skipped["lpips"] and "mrtlab weights import" in skipped["lpips"]
    assert "mrtlab weights download vgg16" in skipped["dists"]
    assert "mrtlab weights download inception" in F.PatchFID(tmp_path).skipped
