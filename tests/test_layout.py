"""The package's layout: the programs live in `cnngen_jax.commands` and nothing else imports them;
commands and the library modules behind them ask a run for a capability
(`cnngen_jax.capabilities`), never for a task class, and a run without it gets one line naming
what it is and what the command needs."""

import ast
import os

import numpy as np
import pytest
from PIL import Image

from cnngen_jax import cli, editing, sampling, transforming
from cnngen_jax.errors import UserError
from tests.conftest import ROOT

PACKAGE = os.path.join(ROOT, "cnngen_jax")
COMMANDS = "cnngen_jax.commands"
PROGRAMS = {"sample", "edit", "restore", "stylize", "convert_vgg", "convert_inception", "prepare"}
# What the commands stand on: they check capabilities, not task classes.
CAPABILITY_USERS = {"sampling", "editing", "transforming", "export", "inversion"}
TASK_CLASSES = {"GANTask", "VAETask", "RestorationTask", "StyleTransferTask"}
CAPABILITIES = {"Sampler", "Encoder", "ImageToImage", "Restorer", "Likelihood", "StyleTransfer"}


def module_name(path: str) -> str:
    relative = os.path.relpath(path, ROOT).removesuffix(".py").replace(os.sep, ".")
    return relative.removesuffix(".__init__")


def package_modules() -> dict[str, str]:
    """Module name -> path of every module of the package (configs/ aside)."""
    found = {}
    for folder, _, names in os.walk(PACKAGE):
        for name in names:
            if name.endswith(".py"):
                found[module_name(os.path.join(folder, name))] = os.path.join(folder, name)
    return found


def imported(path: str, module: str) -> set[str]:
    """The full names of every module (and `from` name) `path` imports, anywhere in it:
    `import X.Y`, `from X import Y` as `X.Y`, relative imports resolved against `module`, and
    `importlib.import_module("X")`."""
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(str(node.args[0].value))
    return names


def test_imported_sees_every_form_of_import(tmp_path):
    path = tmp_path / "probe.py"
    path.write_text(
        "import cnngen_jax.commands.sample\nfrom cnngen_jax import commands\n"
        "def later():\n    from ..commands import edit\n"
        "x = importlib.import_module('cnngen_jax.commands.restore')\n"
    )
    names = imported(str(path), "cnngen_jax.sub.probe")
    assert {
        "cnngen_jax.commands.sample", "cnngen_jax.commands", "cnngen_jax.commands.edit",
        "cnngen_jax.commands.restore",
    } <= names  # fmt: skip


def test_the_commands_package_holds_the_programs_only():
    folder = os.path.join(PACKAGE, "commands")
    programs = {n.removesuffix(".py") for n in os.listdir(folder) if n.endswith(".py")}
    programs.discard("__init__")
    assert not PROGRAMS - programs, PROGRAMS - programs  # and `evaluate`, another's
    for name in programs:
        with open(os.path.join(folder, f"{name}.py"), encoding="utf-8") as f:
            source = f.read()
        assert 'if __name__ == "__main__":' in source, name
        assert len(source.splitlines()) < 150, f"{name}: a command stays thin"
    for old in ("sample", "edit", "restore", "stylize", "torch_weights", "models/convert_vgg",
                "metrics/convert_inception", "data/prepare"):  # fmt: skip
        assert not os.path.exists(os.path.join(PACKAGE, f"{old}.py")), old


def test_no_library_module_imports_the_commands():
    offending = {}
    for module, path in package_modules().items():
        if module.startswith(COMMANDS) or module == "cnngen_jax.main":
            continue
        found = sorted(
            name for name in imported(path, module) if name.split(".")[:2] == COMMANDS.split(".")
        )
        if found:
            offending[module] = found
    assert not offending, offending


def test_commands_and_their_libraries_ask_for_capabilities_not_task_classes():
    modules = package_modules()
    checked = [m for m in modules if m.startswith(COMMANDS)]
    checked += [f"cnngen_jax.{name}" for name in CAPABILITY_USERS]
    for module in checked:
        names = imported(modules[module], module)
        assert not {n for n in names if n.rpartition(".")[2] in TASK_CLASSES}, module
        assert not {n for n in names if n.startswith("cnngen_jax.tasks.")}, module
        with open(modules[module], encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "hasattr":
                pytest.fail(f"{module}:{node.lineno}: hasattr: check a capability instead")
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "isinstance":
                kind = node.args[1]
                name = getattr(kind, "id", getattr(kind, "attr", None))
                assert name in CAPABILITIES, f"{module}:{node.lineno}: isinstance of {name}"


def photo(path) -> str:
    pixels = np.random.default_rng(0).integers(0, 256, (14, 20, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return str(path)


def one_line_error(capsys, call) -> str:
    """The stderr of `call()` run as a command body runs it (`cli.reported_errors`): exit code 2
    and one `error:` line, which is returned."""
    with pytest.raises(SystemExit) as exited, cli.reported_errors():
        call()
    assert exited.value.code == cli.EXIT_USER_ERROR
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0].removeprefix("error: ")


GENERATIVE = "needs a generative model (a GAN or a VAE)"
IMAGE_TO_IMAGE = "needs an image-to-image model (super-resolution, inpainting or style transfer)"


@pytest.mark.parametrize("export", [False, True])
def test_sample_on_a_restoration_run_says_what_the_run_is(tiny_runs, tmp_path, capsys, export):
    out = tmp_path / "out"
    message = one_line_error(
        capsys, lambda: sampling.sample(tiny_runs["srresnet"], str(out), export=export)
    )
    assert message == (
        f"this run is a super-resolution model; `python -m cnngen_jax.commands.sample` {GENERATIVE}"
    )
    assert not out.exists()


def test_edit_on_a_restoration_run_says_what_the_run_is(tiny_runs, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(UserError) as error:
        editing.edit(tiny_runs["srresnet"], [photo(tmp_path / "in.png")], str(out))
    assert str(error.value) == (
        f"this run is a super-resolution model; `python -m cnngen_jax.commands.edit` {GENERATIVE}"
    )
    assert not out.exists()


@pytest.mark.parametrize("command", ["restore", "stylize"])
def test_restore_and_stylize_on_a_gan_run_say_what_the_run_is(tiny_runs, tmp_path, capsys, command):
    out = tmp_path / "out.png"
    user = {"restore": transforming.RESTORE, "stylize": transforming.STYLIZE}[command]
    image = photo(tmp_path / "in.png")
    message = one_line_error(
        capsys, lambda: transforming.transform_file(tiny_runs["dcgan"], image, str(out), user=user)
    )
    assert (
        message == f"this run is a GAN; `python -m cnngen_jax.commands.{command}` {IMAGE_TO_IMAGE}"
    )
    assert not out.exists()


def module_level_imports(path: str, module: str, known: set[str]) -> set[str]:
    """The package modules `path` imports when it is imported: its top-level statements, into
    `if` and `try` blocks but not functions (lazy imports) or `if TYPE_CHECKING:`; a submodule's
    implicit import of its own parent packages is not an edge."""
    with open(path, encoding="utf-8") as f:
        body = ast.parse(f.read()).body
    names: set[str] = set()
    while body:
        node, *body = body
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
            body = [*node.body, *node.orelse, *body]
        elif isinstance(node, ast.Try):
            body = [*node.body, *body]
    return {n for n in names & known if n != module and not module.startswith(f"{n}.")}


def test_the_package_has_no_import_cycle():
    modules = package_modules()
    graph = {m: module_level_imports(p, m, set(modules)) for m, p in modules.items()}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            pytest.fail(f"import cycle: {' -> '.join(path[path.index(module) :] + [module])}")
        if module not in done:
            for dependency in sorted(graph[module]):
                visit(dependency, [*path, module])
            done.add(module)

    for module in sorted(graph):
        visit(module, [])
