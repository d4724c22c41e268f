"""The package's layers, read from the source: imports run one way, down the flow
data/laws -> model -> inference -> result -> forecast / evaluate -> many -> viz -> api -> cli,
with no circles; only viz draws, only cli knows argv, and importing configures nothing."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bayescale"

# lowest first: a module may import its own layer and the layers before it, never one after
LAYERS = ["errors", "laws", "data", "model", "inference", "result", "forecast", "evaluate", "many",
          "viz", "api", "cli"]


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts).removesuffix(".__init__")] = path
    return out


def layer(module: str) -> int | None:
    """Index of ``module``'s layer; the package root, which re-exports the public calls, is the api's."""
    parts = module.split(".")
    return LAYERS.index("api") if len(parts) == 1 else LAYERS.index(parts[1])


def imports(module: str, path: Path, known: dict) -> set[str]:
    """bayescale modules that ``module`` imports, at module level or inside functions."""
    is_pkg = path.name == "__init__.py"
    here = module.split(".") if is_pkg else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {t for t in found if t in known and t != module}


def edges() -> dict[str, set[str]]:
    known = modules()
    return {m: imports(m, p, known) for m, p in known.items()}


def test_every_module_belongs_to_a_layer():
    strays = [m for m in modules() if m != "bayescale" and m.split(".")[1] not in LAYERS]
    assert not strays, f"modules outside the layers {LAYERS}: {strays}"


def test_imports_run_down_the_flow():
    upward = [f"{m} -> {t}" for m, targets in edges().items()
              for t in targets if layer(t) > layer(m)]
    assert not upward, "imports against the flow:\n" + "\n".join(sorted(upward))


def test_no_import_circles():
    graph = {m: {t for t in ts if t in modules() and t != "bayescale"} for m, ts in edges().items()}
    graph = {m: {t for t in ts if not modules()[t].name == "__init__.py"} for m, ts in graph.items()}
    state, circles = {}, []

    def visit(m, stack):
        state[m] = "open"
        stack.append(m)
        for t in graph[m]:
            if state.get(t) == "open":
                circles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t, stack)
        stack.pop()
        state[m] = "done"

    for m in graph:
        if m not in state:
            visit(m, [])
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)


def test_the_checks_see_a_violation():
    """The checks above can fail: an upward import planted in a module's source is found."""
    known = modules()
    path = PACKAGE / "model.py"
    planted = path.read_text() + "\nfrom .viz import plot\n"
    tmp = Path(sys.prefix).parent / "planted_model.py"  # parsed only, never imported
    try:
        tmp.write_text(planted)
        found = imports("bayescale.model", tmp, known)
    finally:
        tmp.unlink(missing_ok=True)
    assert "bayescale.viz.plot" in found and layer("bayescale.viz.plot") > layer("bayescale.model")


def _importers(name: str) -> set[str]:
    out = set()
    for m, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == name for a in node.names):
                out.add(m)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == name:
                out.add(m)
    return out


def test_only_viz_draws_and_only_cli_knows_argv():
    drawing = {m for m in _importers("matplotlib") if not m.startswith(("bayescale.viz", "bayescale.cli"))}
    assert drawing == set()
    assert {m for m in _importers("argparse") if not m.startswith("bayescale.cli")} == set()
    argv = [m for m, p in modules().items()
            if "sys.argv" in p.read_text() and not m.startswith("bayescale.cli")]
    assert argv == []


def test_environment_reads_are_only_the_data_and_cache_directories():
    readers = {m for m, p in modules().items() if "os.environ" in p.read_text()}
    # the cache folder (runtime), the data folder (loaders), and the environment handed to
    # spawned worker processes (executor), which changes no result
    assert readers <= {"bayescale.inference.runtime", "bayescale.data.loaders",
                       "bayescale.inference.executor"}, readers


@pytest.mark.parametrize("probe", [
    "from jax._src import xla_bridge; assert not xla_bridge.backends_are_initialized()",
    "import jax; assert not jax.config.jax_enable_x64",
])
def test_import_configures_nothing(probe):
    code = f"import bayescale; {probe}"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


HEAVY = ("jax", "numpyro", "arviz_base", "arviz_stats", "blackjax", "matplotlib", "scipy", "pandas")


@pytest.mark.parametrize("run", [
    "import bayescale",
    "from bayescale.cli.main import main; main(['laws'])",
    "from bayescale.cli.main import main; main(['laws', 'power'])",
    "from bayescale.cli.main import main; main(['--help'])",
])
def test_starting_up_imports_no_sampler_and_no_plotting(run):
    """``import bayescale``, ``bayescale --help`` and ``bayescale laws`` load none of JAX, NumPyro,
    ArviZ, BlackJAX, matplotlib, SciPy or pandas: those wait for the first fit, table or figure
    (this counts modules, it does not time anything)."""
    code = f"import sys\ntry:\n    {run}\nexcept SystemExit:\n    pass\n" \
           f"print([m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == "[]", done.stderr[-2000:]


def test_lazy_names_are_the_public_names():
    import bayescale

    assert set(bayescale._LAZY) <= set(bayescale.__all__)
    for name in bayescale.__all__:
        assert getattr(bayescale, name) is not None, name
    assert bayescale.datasets.simulate is not None and "fit" in dir(bayescale)
    with pytest.raises(AttributeError, match="no attribute 'nonesuch'"):
        bayescale.nonesuch  # noqa: B018



def test_the_laws_function_wins_over_the_laws_subpackage():
    """``bayescale.laws`` is both a subpackage and the catalogue function: the function it is,
    whichever is imported first."""
    code = "import bayescale.laws.formula, bayescale; from bayescale import laws; assert callable(laws)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_forecast_function_wins_over_the_forecast_subpackage():
    """``bayescale.forecast`` is both a step of the flow (a subpackage) and the stacked forecast:
    the function it is, whichever is imported first, and it loads nothing heavy until called."""
    code = ("import sys, bayescale.forecast.chain, bayescale; from bayescale import forecast; "
            "assert callable(forecast) and bayescale.forecast is forecast; "
            "import bayescale.many.stack as s; assert forecast.__doc__ and s.forecast.__doc__")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
