"""What the user's environment can get wrong: a dataset without random access, a truncated weights
file, a bad manual multi-process launch, where caches live, and the TPU pod launcher's quoting.
Each gives one clear line (or does the right thing), never a traceback."""

import json
import os
import pathlib
import re
import shutil
import subprocess
import types

import jax
import numpy as np
import pytest

from cnngen_jax import cli, data, files, main
from cnngen_jax.errors import UserError
from cnngen_jax.kernels import onednn
from cnngen_jax.metrics import inception_weights
from cnngen_jax.models import vgg
from tests.conftest import FAMILIES, ROOT, tiny_config

# --- a dir: dataset in TFRecord format ------------------------------------------------------


def tfrecord_dataset(data_dir: str, target: pathlib.Path) -> str:
    """A copy of the prepared digits whose dataset_info.json records no file format, as TFDS
    writes a dataset in its default format, TFRecord (which has no random access)."""
    shutil.copytree(os.path.join(data_dir, "cnngen_digits", "1.0.0"), target)
    info_path = target / "dataset_info.json"
    info = json.loads(info_path.read_text())
    info.pop("fileFormat")
    info_path.write_text(json.dumps(info))
    return f"dir:{target}"


def test_tfrecord_directory_dataset_is_one_line_naming_arrayrecord(data_dir, tmp_path):
    name = tfrecord_dataset(data_dir, tmp_path / "digits")
    for read in (lambda: data.get_spec(name), lambda: data.open_source(name, "train", "")):
        with pytest.raises(UserError) as error:
            read()
        message = str(error.value)
        assert "\n" not in message
        assert "tfrecord" in message and "ArrayRecord" in message
        assert "tfds convert_format" in message and str(tmp_path / "digits") in message


def test_arrayrecord_directory_dataset_still_opens(data_dir):
    source = data.open_source(f"dir:{data_dir}/cnngen_digits/1.0.0", "train", "")
    assert len(source) > 0


# --- a truncated .npz of converted weights --------------------------------------------------


def truncated_copy(source: str, target: pathlib.Path, keep: float = 0.5) -> str:
    """`source` cut short, as a killed download or copy leaves it."""
    content = pathlib.Path(source).read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content[: int(len(content) * keep)])
    return str(target)


@pytest.mark.parametrize("keep", [0.0, 0.01, 0.5, 0.99])
def test_truncated_vgg_weights_name_the_file_and_the_conversion(data_dir, tmp_path, keep):
    path = truncated_copy(os.path.join(data_dir, "random_vgg16.npz"), tmp_path / "vgg16.npz", keep)
    with pytest.raises(UserError) as error:
        vgg.load_vgg(path, "vgg16")
    message = str(error.value)
    assert "\n" not in message and path in message
    assert "cannot read" in message and "convert_vgg" in message


@pytest.mark.parametrize("keep", [0.0, 0.5, 0.99])
def test_truncated_inception_weights_name_the_file_and_the_conversion(tmp_path, keep):
    arrays = {"a": np.zeros(4096, np.float32), "b": np.ones(7, np.float32)}
    whole = tmp_path / "whole.npz"
    files.write_npz(whole, arrays)
    path = truncated_copy(str(whole), tmp_path / "inception.npz", keep)
    with pytest.raises(inception_weights.InceptionWeightsMissing) as error:
        inception_weights.load_inception_weights(path)
    message = str(error.value)
    assert "\n" not in message and path in message
    assert "cannot read" in message and "convert_inception" in message


def test_vgg_weights_setting_is_checked_by_the_task(data_dir, tmp_path):
    """A config's vgg_weights naming a truncated file: the line names the setting too."""
    from cnngen_jax.tasks import create_task

    path = truncated_copy(os.path.join(data_dir, "random_vgg16.npz"), tmp_path / "v.npz")
    config = tiny_config(data_dir, family="style_transfer", vgg_weights=path)
    task = create_task(config, data.dataset_info("photos"))
    with pytest.raises(UserError, match="^config.vgg_weights: cannot read VGG weights file"):
        _ = task._pretrained  # what `with_pretrained` reads before the first step


# --- jax.distributed.initialize -------------------------------------------------------------


@pytest.mark.parametrize(
    "coordinator, num_processes, process_id, flag",
    [
        ("10.0.0.1:1234", 2, None, "--process_id"),
        ("10.0.0.1:1234", 2, 2, "--process_id=2"),
        ("10.0.0.1:1234", 2, -1, "--process_id=-1"),
        ("10.0.0.1:1234", 0, 0, "--num_processes=0"),
        ("10.0.0.1", 2, 0, "--coordinator_address=10.0.0.1"),
        (":1234", 2, 0, "--coordinator_address=:1234"),
    ],
)
def test_bad_manual_launch_names_the_flags(coordinator, num_processes, process_id, flag):
    with pytest.raises(UserError) as error:
        main.manual_launch(coordinator, num_processes, process_id)
    assert flag in str(error.value)


def test_good_manual_launch_passes():
    assert main.manual_launch(None, None, None) is None
    assert main.manual_launch("host:1234", 4, 3) == ("host:1234", 4, 3)


def launch_flags(monkeypatch, coordinator, num_processes, process_id) -> None:
    for holder, value in (
        ("_COORDINATOR", coordinator),
        ("_NUM_PROCESSES", num_processes),
        ("_PROCESS_ID", process_id),
    ):
        monkeypatch.setattr(main, holder, types.SimpleNamespace(value=value))


def test_failed_initialize_is_one_error_line_and_exit_2(monkeypatch, capsys):
    def initialize(*args):
        raise RuntimeError("UNAVAILABLE: failed to connect to all addresses\nmore detail")

    monkeypatch.setattr(jax.distributed, "initialize", initialize)
    launch_flags(monkeypatch, "10.0.0.1:1234", 2, 1)
    with pytest.raises(SystemExit) as exit_info, cli.reported_errors():
        main.initialize_distributed()
    assert exit_info.value.code == cli.EXIT_USER_ERROR
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: jax.distributed.initialize failed")
    assert "--coordinator_address=10.0.0.1:1234" in lines[0] and "--process_id=1" in lines[0]


def test_process_id_out_of_range_stops_main_before_initialize(monkeypatch, capsys):
    monkeypatch.setattr(jax.distributed, "initialize", pytest.fail)
    launch_flags(monkeypatch, "10.0.0.1:1234", 2, 2)
    with pytest.raises(SystemExit) as exit_info, cli.reported_errors():
        main.initialize_distributed()
    assert exit_info.value.code == cli.EXIT_USER_ERROR
    assert capsys.readouterr().err.startswith("error: --process_id=2 must be in [0, ")


# --- cache locations ------------------------------------------------------------------------


def test_cache_home_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert files.cache_home() == str(tmp_path)
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert files.cache_home() == os.path.expanduser("~/.cache")
    monkeypatch.setenv("XDG_CACHE_HOME", "")  # empty is unset (XDG base directory spec)
    assert files.cache_home() == os.path.expanduser("~/.cache")


def cache_settings(node) -> list[str]:
    """Every string setting of a config (nested dicts and lists) that names a path under
    ~/.cache."""
    if isinstance(node, str):
        return [node] if node.startswith("~/.cache") else []
    if hasattr(node, "items"):
        return [s for value in node.values() for s in cache_settings(value)]
    if isinstance(node, list | tuple):
        return [s for value in node for s in cache_settings(value)]
    return []


def test_every_default_cache_lives_under_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    defaults = [vgg.DEFAULT_WEIGHTS_PATTERN.format(arch="vgg19")]
    for module, _ in FAMILIES.values():
        defaults += cache_settings(module.get_config().to_dict())
    assert any("xla" in d for d in defaults) and any("eval" in d for d in defaults)
    for default in defaults:
        assert str(files.path(default)).startswith(str(tmp_path) + os.sep), default
    assert str(onednn.cache_dir()) == str(tmp_path / "cnngen_jax" / "kernels")
    assert str(files.path("~/.cachex/a")) == os.path.expanduser("~/.cachex/a")  # only the folder


def test_vgg_and_inception_weights_found_under_xdg_cache_home(data_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    shutil.copy(os.path.join(data_dir, "random_vgg16.npz"), tmp_path / "vgg16.npz")
    assert vgg.load_vgg("~/.cache/vgg16.npz", "vgg16")
    (tmp_path / "inception.npz").write_bytes(b"not an npz")
    with pytest.raises(inception_weights.InceptionWeightsMissing, match="cannot read"):
        inception_weights.load_inception_weights("~/.cache/inception.npz")


def test_no_module_resolves_a_cache_on_its_own():
    """`files.cache_home` is the one place that reads XDG_CACHE_HOME or expands ~/.cache."""
    offenders = []
    for path in pathlib.Path(ROOT, "cnngen_jax").rglob("*.py"):
        if path.name == "files.py":
            continue
        text = path.read_text()
        if "XDG_CACHE_HOME" in text or re.search(r"expanduser\([\"']~/\.cache", text):
            offenders.append(str(path))
    assert not offenders


# --- launch/tpu_pod.sh ----------------------------------------------------------------------

ARGV_STUB = '#!/bin/bash\nprintf "%s\\0" "$@" > "$ARGV_OUT"\n'


def stub(directory: pathlib.Path, name: str) -> None:
    """An executable `name` in `directory` that writes its arguments, NUL-separated, to
    $ARGV_OUT."""
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(ARGV_STUB)
    (directory / name).chmod(0o755)


def recorded(path: pathlib.Path) -> list[str]:
    return path.read_bytes().decode().split("\0")[:-1]


def test_tpu_pod_script_parses():
    subprocess.run(["bash", "-n", os.path.join(ROOT, "launch", "tpu_pod.sh")], check=True)


def test_tpu_pod_forwards_every_argument_verbatim(tmp_path):
    """The script's gcloud gets the command; run on a 'worker' (bash with a fake python), the
    command gives python each argument as it was given to the script."""
    bin_dir, home = tmp_path / "bin", tmp_path / "home"
    stub(bin_dir, "gcloud")
    stub(bin_dir, "python")
    (home / "cnngen_jax").mkdir(parents=True)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(home)}
    extra = ["--config.style_image=my photos/a b.png", "--config.note=$HOME `x` 'q' \"d\"", "*"]
    workdir = "/mnt/shared/runs/with space"
    script = os.path.join(ROOT, "launch", "tpu_pod.sh")
    env["ARGV_OUT"] = str(tmp_path / "gcloud.argv")
    subprocess.run(
        [script, "my-tpu", "us-a", "configs/dcgan.py", workdir, *extra], env=env, check=True
    )
    gcloud = recorded(tmp_path / "gcloud.argv")
    assert gcloud[:6] == ["compute", "tpus", "tpu-vm", "ssh", "my-tpu", "--zone=us-a"]
    (command,) = [a.removeprefix("--command=") for a in gcloud if a.startswith("--command=")]

    env["ARGV_OUT"] = str(tmp_path / "python.argv")
    subprocess.run(["bash", "-c", command], env=env, check=True, cwd=tmp_path)
    expected = ["-m", "cnngen_jax.main", "--config=configs/dcgan.py", f"--workdir={workdir}"]
    assert recorded(tmp_path / "python.argv") == expected + extra


def test_tpu_pod_without_enough_arguments_is_a_usage_line(tmp_path):
    script = os.path.join(ROOT, "launch", "tpu_pod.sh")
    result = subprocess.run([script, "my-tpu"], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.startswith("usage:")
