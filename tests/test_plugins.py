"""Parts from outside the package (docs/plugins.md): the retention mixer of the docs loaded
with --plugin, $MRTLAB_PLUGINS or by a model file that records it; its checks; its absence
and its changes said in one line."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from mrtlab import plugins
from mrtlab.testing import check_global_mixer

from .helpers import one_error_line, run, smooth_image

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


@pytest.fixture(scope="module")
def plugin_file(tmp_path_factory):
    """The docs' retention.py, in a folder of its own."""
    folder = tmp_path_factory.mktemp("plugin")
    code = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)[0]
    (folder / "retention.py").write_text(code)
    return folder / "retention.py"


@pytest.fixture(scope="module")
def retention(plugin_file):
    plugins.load(str(plugin_file))
    from mrtlab.registry import lookup
    return lookup("global_mixer", "retention")


@pytest.fixture(scope="module")
def model_file(retention, tmp_path_factory):
    from mrtlab import create_model
    from mrtlab.zoo import identify, save_model

    section = {"architecture": "mrt_tiny", "global_mixer": {"class_path": "retention", "init_args": {"heads": 4}}}
    model = create_model("mrt_tiny", global_mixer=section["global_mixer"])
    model.update()
    identify(model, section, "retention-model")
    return save_model(model, section, tmp_path_factory.mktemp("model") / "model")


def cli(*argv, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "mrtlab.cli", *map(str, argv)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(DOC.parents[1]), **(env or {})})


def test_the_docs_mixer_passes_the_conformance_checks(retention):
    check_global_mixer(retention, heads=4)


def test_bench_mixers_takes_a_plugin(plugin_file, tmp_path, capsys):
    code, out, err = run(capsys, "bench", "mixers", "--plugin", plugin_file, "--mixers", "retention", "--lengths",
                         "16", "--repeat", "1", "--ops-T", "0", "--dim", "32", "--json", tmp_path / "b.json")
    assert code == 0, err
    assert {r["mixer"] for r in json.loads((tmp_path / "b.json").read_text())} == {"retention"}
    code, _, err = run(capsys, "bench", "mixers", "--mixers", "nosuch", "--lengths", "16")
    assert code == 1 and "unknown global mixer 'nosuch'" in one_error_line(err)


def test_a_model_file_records_its_plugin_and_needs_it(model_file, plugin_file, tmp_path):
    meta = json.loads(__import__("mrtlab.zoo.catalog", fromlist=["x"]).metadata(model_file)["identity"])
    assert list(meta["plugins"]) == ["retention"] and len(meta["plugins"]["retention"]) == 12
    Image.fromarray(smooth_image(24, 32)).save(tmp_path / "a.png")
    proc = cli("compress", tmp_path / "a.png", "-o", tmp_path / "a.mrt", "-m", model_file, cwd=tmp_path)
    assert proc.returncode == 1
    assert "needs the plugin module 'retention', which cannot be imported" in one_error_line(proc.stderr)
    for how in (["--plugin", plugin_file], []):
        env = {} if how else {"MRTLAB_PLUGINS": str(plugin_file)}
        out = tmp_path / f"a{len(how)}.mrt"
        proc = cli("compress", tmp_path / "a.png", "-o", out, "-m", model_file, *how, cwd=tmp_path, env=env)
        assert proc.returncode == 0 and not proc.stderr, proc.stderr
    proc = cli("decompress", out, "-o", tmp_path / "b.png", "-m", model_file, cwd=plugin_file.parent)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr   # importable from where it runs


def test_a_changed_plugin_is_a_warning(model_file, plugin_file, tmp_path):
    changed = tmp_path / "retention.py"
    changed.write_text(plugin_file.read_text() + "\n# tuned since\n")
    Image.fromarray(smooth_image(24, 32)).save(tmp_path / "a.png")
    proc = cli("compress", tmp_path / "a.png", "-o", tmp_path / "a.mrt", "-m", model_file, cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stderr.startswith("mrtlab: warning: plugin module 'retention' has changed since model ")
    assert len(proc.stderr.splitlines()) == 1


def test_a_plugin_that_does_not_import_is_one_line(tmp_path, capsys):
    (tmp_path / "broken.py").write_text("raise RuntimeError('not today')\n")
    code, _, err = run(capsys, "models", "--plugin", tmp_path / "broken.py")
    assert code == 1 and "cannot load plugin" in one_error_line(err) and "RuntimeError: not today" in err
    code, _, err = run(capsys, "models", "--plugin", "no_such_module_here")
    assert code == 1 and "ModuleNotFoundError" in one_error_line(err)
