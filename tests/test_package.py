"""The installable package: what `pip install .` puts on disk imports without PyTorch, carries
the configs as `cnngen_jax.configs` and the kernel source but not the benchmarks/ tools, and
trains from another directory; no module of it imports PyTorch or the tools at module level;
pyproject.toml's dependency ranges admit the pins of requirements.txt."""

import ast
import os
import shutil
import subprocess
import sys
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import FAST_COMPILE, ROOT, tiny_flags


def pins() -> dict[str, str]:
    """Package name -> pinned version, from requirements.txt."""
    found = {}
    with open(os.path.join(ROOT, "requirements.txt")) as f:
        for line in f:
            line = line.split("#")[0].strip()
            if line:
                requirement = Requirement(line)
                found[canonicalize_name(requirement.name)] = str(requirement.specifier)[2:]
    return found


def test_pinned_versions_satisfy_the_declared_ranges():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        declared = [Requirement(d) for d in tomllib.load(f)["project"]["dependencies"]]
    pinned = pins()
    for requirement in declared:
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is declared but not pinned in requirements.txt"
        assert requirement.specifier.contains(pinned[name]), (requirement, pinned[name])


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> str:
    """`pip install --no-deps --target SITE .` of a copy of the checkout (pip builds in the
    source tree, which must stay clean), without network or build isolation."""
    source = tmp_path_factory.mktemp("source")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("cnngen_jax", "configs", "benchmarks"):  # benchmarks/: must stay out
        shutil.copytree(os.path.join(ROOT, folder), source / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), source / name)
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--target", str(target), str(source)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return str(target)


def run_installed(site: str, cwd, args: list[str]) -> subprocess.CompletedProcess:
    """`python ARGS` in `cwd` (not the checkout) with only the installed package importable."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XLA_FLAGS")}
    env.update(PYTHONPATH=site, XLA_FLAGS=FAST_COMPILE)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


IMPORT_ALL = """
import importlib, pkgutil, sys
from absl import flags
sys.modules["torch"] = None  # any import of torch fails
import cnngen_jax
assert cnngen_jax.__file__.startswith(sys.argv[1]), cnngen_jax.__file__
for module in pkgutil.walk_packages(cnngen_jax.__path__, "cnngen_jax."):
    before = set(flags.FLAGS)
    importlib.import_module(module.name)
    for name in set(flags.FLAGS) - before:  # the commands define --workdir each
        delattr(flags.FLAGS, name)
from cnngen_jax.configs import dcgan, srresnet
print(dcgan.get_config().model.name, srresnet.get_config().model.name)
"""


@pytest.mark.e2e
def test_the_installed_package_imports_without_torch(site, tmp_path):
    for path in ("configs/dcgan.py", "configs/common.py", "kernels/onednn_conv.cc"):
        assert os.path.isfile(os.path.join(site, "cnngen_jax", path)), path
    for tool in ("benchmarks", "tests", "cnngen_jax/benchmark.py"):  # tools stay in the checkout
        assert not os.path.exists(os.path.join(site, tool)), tool
    result = run_installed(site, tmp_path, ["-c", IMPORT_ALL, site])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["dcgan", "msrresnet"]


@pytest.mark.e2e
def test_the_installed_package_trains_from_another_directory(site, data_dir, cache_dir, tmp_path):
    config = os.path.join(site, "cnngen_jax", "configs", "dcgan.py")
    flags = tiny_flags(data_dir, cache_dir, num_train_steps=2, sample_every_steps=2)
    args = ["-m", "cnngen_jax.main", f"--config={config}", f"--workdir={tmp_path / 'run'}"]
    result = run_installed(site, tmp_path, [*args, *flags])
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "checkpoints" / "2").is_dir()


# Never imported when the package is: PyTorch and torch-fidelity are optional references, and the
# checkout's tools (benchmarks/, tests/) are not installed. A converter may import torch lazily,
# inside the function that reads a .pth file.
NOT_AT_IMPORT = {"torch", "torchvision", "torch_fidelity", "benchmarks", "tests"}


def module_level_imports(source: str) -> set[str]:
    """The top-level names of what `source` imports when it is imported: `import X.Y`, `from X
    import Y` and `importlib.import_module("X...")` anywhere outside a function body (class
    bodies, `if` and `try` blocks at module level included); relative imports left out."""
    names, pending = set(), list(ast.parse(source).body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue  # runs when called, not when the module is imported
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value.split(".")[0])
        pending.extend(ast.iter_child_nodes(node))
    return names


def test_module_level_imports_sees_through_blocks_not_into_functions():
    source = """
import os.path
from torch import nn
try:
    import torch_fidelity
except ImportError:
    pass
class A:
    import benchmarks.cases
X = importlib.import_module("tests.torch_dcgan")
from . import sibling
def convert():
    import torchvision
lazy = lambda: importlib.import_module("jax")
"""
    assert module_level_imports(source) == {"os", "torch", "torch_fidelity", "benchmarks", "tests"}


def test_no_package_module_imports_torch_or_the_tools_at_module_level():
    files = [
        os.path.join(folder, name)
        for top in ("cnngen_jax", "configs")  # configs/ installs as cnngen_jax.configs
        for folder, _, names in os.walk(os.path.join(ROOT, top))
        for name in names
        if name.endswith(".py")
    ]
    assert len(files) > 20  # the walk found the package
    offending = {}
    for path in files:
        with open(path, encoding="utf-8") as f:
            found = module_level_imports(f.read()) & NOT_AT_IMPORT
        if found:
            offending[os.path.relpath(path, ROOT)] = sorted(found)
    assert not offending, offending
