"""The analyst notebooks: committed clean, and executed end to end on small generated data.

Fast checks (every ``notebooks/*.ipynb``): named ``NN-topic.ipynb``, no outputs or execution
counts, plain Python (no magics) without ``def``, ``class`` or ``lambda``, imports only from
the project's packages, the standard library, the declared dependencies and the Jupyter
kernel itself, inputs read from ``LEADCAST_DATA`` in the first code cell.

Slow checks: each notebook runs in a fresh kernel of this virtualenv with ``LEADCAST_HOME``
in a temporary directory and ``LEADCAST_DATA`` on the session's generated dataset (the
first notebook generates its own, so the default path runs too). The executed copy stays
in memory: nothing is written back to ``notebooks/``.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import nbformat
import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
NAME = re.compile(r"^\d{2}-[a-z0-9]+(?:-[a-z0-9]+)*\.ipynb$")
#: The kernel's own modules a notebook may use: IPython's display, inline matplotlib figures.
KERNEL_MODULES = frozenset({"IPython", "matplotlib_inline"})
#: Seconds one cell may run (a backtest cell is the longest, about a minute on 2 busy cores).
CELL_TIMEOUT = 600


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def _canonical(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _allowed_modules() -> frozenset[str]:
    """Top-level modules a notebook may import: the project's packages, the standard
    library, the modules of the distributions ``pyproject.toml`` declares, the kernel's."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    packages = set(project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])
    declared = {
        _canonical(re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0])
        for spec in project["project"]["dependencies"]
    }
    third_party = {
        module
        for module, dists in packages_distributions().items()
        if any(_canonical(d) in declared for d in dists)
    }
    return frozenset(packages | third_party | set(sys.stdlib_module_names) | KERNEL_MODULES)


def _code_cells(nb: Any) -> list[Any]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def _parse(cell: Any, path: Path, index: int) -> ast.Module:
    try:
        return ast.parse(cell.source)
    except SyntaxError as exc:
        pytest.fail(
            f"{path.name}, code cell {index}: not plain Python ({exc.msg}, line {exc.lineno}); "
            "notebooks hold no IPython magics or shell escapes"
        )


def test_notebooks_exist_and_the_readme_lists_each_one() -> None:
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOK_DIR}"
    readme = (NOTEBOOK_DIR / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in NOTEBOOKS if p.name not in readme]
    assert not missing, f"notebooks/README.md does not mention {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook__is_named_nn_topic_and_committed_without_outputs(path: Path) -> None:
    assert NAME.match(path.name), f"{path.name}: name notebooks NN-topic.ipynb (kebab-case)"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert set(nb.metadata) <= {"kernelspec", "language_info"}, (
        f"{path.name}: notebook metadata {sorted(nb.metadata)} is more than the kernel's"
    )
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for index, cell in enumerate(_code_cells(nb), start=1):
        assert cell.outputs == [], f"{path.name}, code cell {index}: outputs are committed"
        assert cell.execution_count is None, f"{path.name}, code cell {index}: execution count"
        assert "execution" not in cell.metadata, f"{path.name}, code cell {index}: timings"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook__defines_no_functions_or_classes(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
    for index, cell in enumerate(_code_cells(nb), start=1):
        found = [
            f"{type(node).__name__} on line {node.lineno}"
            for node in ast.walk(_parse(cell, path, index))
            if isinstance(node, definitions)
        ]
        assert not found, (
            f"{path.name}, code cell {index}: {found}; notebooks import logic from the "
            "packages instead of defining it"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook__imports_only_the_packages_stdlib_and_declared_dependencies(
    path: Path,
) -> None:
    allowed = _allowed_modules()
    nb = nbformat.read(path, as_version=4)
    for index, cell in enumerate(_code_cells(nb), start=1):
        for node in ast.walk(_parse(cell, path, index)):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0 and node.module, f"{path.name}: relative import"
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, (
                    f"{path.name}, code cell {index}: imports {name}, which is neither a "
                    "project package, the standard library, a dependency declared in "
                    "pyproject.toml nor the Jupyter kernel"
                )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook__reads_its_data_directory_from_the_environment_first(path: Path) -> None:
    first = _code_cells(nbformat.read(path, as_version=4))[0]
    assert "LEADCAST_DATA" in first.source, f"{path.name}: read LEADCAST_DATA in the first cell"


# -- execution ----------------------------------------------------------------------------

#: Per notebook: the fewest PNG figures and texts its outputs must show.
EXPECTED: dict[str, tuple[int, tuple[str, ...]]] = {
    "01-explore-crm-history.ipynb": (
        2,
        ("contracts passed: True", "deals entering", "converted_90d", "share missing"),
    ),
    "02-conversion-model.ipynb": (
        3,
        ("roc_auc", "bant", "naive_bayes", "logistic", "model_auc", "registered AUC"),
    ),
    "03-deal-outlook.ipynb": (
        3,
        ("c_index", "km_stage", "cox", "rep_date", "oracle (the truth)", "open deals"),
    ),
    "04-forecast-and-backtest.ipynb": (
        2,
        ("coverage_80", "stage-weighted baseline", "method close_time_model", "P(bookings >="),
    ),
}
#: Notebooks run without LEADCAST_DATA, so that their default (a generated history) runs too.
ON_DEFAULT_DATA = frozenset({"01-explore-crm-history.ipynb"})


@pytest.fixture(scope="session")
def venv_kernel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``python3`` kernel spec that runs this interpreter (the virtualenv's), whatever
    other ``python3`` kernels the machine has; put first on ``JUPYTER_PATH``."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "Python 3 (leadcast .venv)", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    return root


def _digests(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _texts(nb: Any) -> str:
    parts: list[str] = []
    for cell in _code_cells(nb):
        for output in cell.outputs:
            if output.output_type == "stream":
                parts.append(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                parts.extend(str(output.data.get(kind, "")) for kind in ("text/plain", "text/html"))
    return "\n".join(parts)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook__runs_end_to_end_on_generated_data(
    path: Path,
    demo_dataset: Path,
    venv_kernel: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    from models import registry as R

    home = tmp_path / "leadcast-home"
    monkeypatch.setenv("JUPYTER_PATH", str(venv_kernel))
    monkeypatch.setenv("LEADCAST_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where a notebook generates its default data
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend shows figures
    # LightGBM's OpenMP threads spin while they wait; on cores shared with other work that
    # made training several times slower here. Passive waiting changes no result.
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    if path.name in ON_DEFAULT_DATA:
        monkeypatch.delenv("LEADCAST_DATA", raising=False)
    else:
        monkeypatch.setenv("LEADCAST_DATA", str(demo_dataset))
    assert KernelSpecManager().get_kernel_spec("python3").argv[0] == sys.executable

    before = _digests(NOTEBOOK_DIR)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        startup_timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    client.execute()  # raises CellExecutionError with the failing cell's traceback

    assert _digests(NOTEBOOK_DIR) == before, "executing a notebook changed notebooks/"
    code = _code_cells(nb)
    assert all(cell.execution_count is not None for cell in code)
    outputs = [output for cell in code for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    min_figures, texts = EXPECTED.get(path.name, (1, ()))
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= min_figures, f"{path.name}: {len(figures)} figures shown"
    shown = _texts(nb)
    missing = [text for text in texts if text not in shown]
    assert not missing, f"{path.name}: the outputs do not show {missing}"
    if path.name in ON_DEFAULT_DATA:
        assert f"data: {tmp_path}" in shown, "the notebook did not generate its own data"
    if path.name.startswith("02-"):
        settings = R.RegistrySettings(home=home)
        assert R.champion(settings, "lead-conversion") is not None
    if path.name.startswith("04-"):
        settings = R.RegistrySettings(home=home)
        assert R.champion(settings, "deal-close-time") is not None
        assert R.latest_backtest(settings) is not None
