"""The benchmarks' own machinery: the PyMC mirror is the same posterior, reports render every section.

The mirror test needs the ``bench`` extra (PyMC); without it, it is skipped.
"""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import bayescale as bs

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
X = {"N": "params", "D": "tokens"}


def _module(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _data(name, **kwargs):
    try:
        df = bs.datasets.load(name, **kwargs)
    except bs.DataError as exc:
        pytest.skip(f"data set {name} not available: {exc}")
    return df


@pytest.mark.parametrize("case", ["gadre", "l2l"])
def test_pymc_mirror_has_bayescale_log_density(case):
    pytest.importorskip("pymc")
    from numpyro.infer.util import log_density

    from bayescale.model import build

    if case == "gadre":
        df = _data("gadre_overtrain")
        df = df[df["gadre_fit_split"]]
        kwargs = dict(law="chinchilla_shared", group="dataset", se="loss_se")
    else:
        df = _data("loss_to_loss", split="sweep")
        kwargs = dict(law="chinchilla", group="corpus")
    fit = bs.fit(df, y="loss", x=X, chains=1, warmup=30, draws=5, progress=False, extrapolation=False,
                 **kwargs)
    model = _module("pymc_mirror").pymc_model(fit)
    logp = model.compile_logp(jacobian=False)
    numpyro_model = build(fit.structure, fit.settings.centring)
    data = bs.model.model_data(fit.design)
    post = fit.idata.posterior
    for draw in range(3):
        point, values = {}, {}
        for rv in model.free_RVs:
            value = np.asarray(post[rv.name].isel(chain=0, draw=draw))
            values[rv.name] = value
            transform = model.rvs_to_transforms[rv]
            name = model.rvs_to_values[rv].name
            point[name] = np.log(value) if transform is not None else value
        expected = float(log_density(numpyro_model, (), data, values)[0])
        assert logp(point) == pytest.approx(expected, rel=1e-9, abs=1e-6)


def test_report_renders_every_section_and_target(tmp_path):
    report = _module("report")
    versions = {"numpyro": "0.22.0"}
    head = {"machine": "x86_64, 2 CPU cores, Linux", "date": "2026-11-26", "versions": versions}
    summary = {"bayescale": {"total_s": 20.0, "min_ess_bulk": 2000.0, "ess_per_s": 100.0, "max_rhat": 1.002,
                             "steps_per_draw": 15.0, "divergences": [0], "setup_s": 5.0, "sampling_s": 15.0},
               "nutpie": {"total_s": 10.0, "min_ess_bulk": 1500.0, "ess_per_s": 150.0, "max_rhat": 1.003,
                          "steps_per_draw": 7.0, "divergences": [0], "setup_s": 8.0, "sampling_s": 2.0,
                          "agree": True, "max_abs_z": 1.2}}
    results = {
        "peers": head | {"settings": "4 chains",
                         "cases": {"l2l": {"name": "loss_to_loss", "summary": summary}}},
        "bootstrap": head | {"rows": 240, "grid_starts": 4500, "resamples": 4000, "grid_fit_s": [30.0],
                             "bootstrap_warm_s": 60.0, "bootstrap_full_grid_projected_s": 120000.0,
                             "bayescale_fit_s": [8.0], "speedup_vs_warm_bootstrap": 7.5,
                             "speedup_vs_full_grid_bootstrap": 15000.0,
                             "intervals": {"E": {"bootstrap": [1.7, 1.9], "bayescale": [1.75, 1.88],
                                                 "published": [1.769, 1.871], "point": 1.8}}},
        "scaling": head | {"settings": "2 chains", "points": [
            {"rows": 100, "families": 3, "parameters": 12, "map_s": 1.0, "compile_s": 2.0, "sampling_s": 0.5,
             "steps_per_draw": 10.0, "grad_ms": 0.01, "overhead": 3.0, "peak_mb": 800.0}],
            "families": [{"rows": 500, "families": 10, "error": ["MemoryError"]}]},
        "batch": head | {"law": "power", "fits": 100, "rows_per_fit": 25, "settings": "defaults",
                         "fit_many_s": [30.0], "fit_many_median_s": 30.0, "fit_many_first_fit_s": [5.0],
                         "fit_many_later_fit_median_s": 0.25, "loop_total_s": 400.0,
                         "loop_fit_median_s": 4.0, "loop_first_fit_s": 6.0, "speedup": 13.3,
                         "gate_passed": {"fit_many": 100, "loop": 99},
                         "mean_difference_in_mcse": {"median": 0.7, "p95": 2.0, "share_above_3": 0.003}},
        "sweep": head | {"jobs": 532, "rows": 28391, "cuts": 14, "groups": {"pythia_evals": 420,
                                                                            "obs_scaling": 112},
                         "settings": {"chains": 2, "warmup": 200, "draws": 200},
                         "executors": [{"executor": "sweep, local", "fits": 532, "workers": 2,
                                        "wall_s": 600.0, "fits_per_s": 0.887, "fit_s_median": 1.5,
                                        "overhead_per_fit_s": 0.4, "parent_per_result_ms": 2.5,
                                        "status": {"ok": 500, "gate": 32}}],
                         "dask_equals_local": True,
                         "projection": {"8": {"wall_s": 150.0, "fits_per_s": 3.5}},
                         "projection_basis": {"seconds_per_fit": 2.2, "parent_seconds_per_result": 0.0025}},
        "extrapolation": head | {"median_s": {"plain": 20.0, "calibrated": 50.0}, "ratio": 2.5},
    }
    for name, res in results.items():
        (tmp_path / f"results_{name}_cpu2.json").write_text(json.dumps(res))
    (tmp_path / "RESULTS.md").write_text(f"old text\n{report.KEPT}\n## kept section\n")
    corpus = tmp_path / "convergence" / "numpyro"
    corpus.mkdir(parents=True)
    for k, verdict in enumerate(["passed"] * 19 + ["FAILED: divergences"]):
        (corpus / f"f{k}.json").write_text(json.dumps({"case": f"set{k % 2}/fit{k}", "verdict": verdict}))
    report.HERE = tmp_path
    text = report.write_results(tmp_path / "RESULTS.md")
    for heading in ("## Targets", "## 1. NUTS", "## 2. Time", "## 3. Cost", "## 4. Batched",
                    "## kept section", "## 6. Many fits"):
        assert heading in text, heading
    # the generated section 6 follows the hand-written part, and is replaced, not repeated, on a rerun
    assert text.index("## kept section") < text.index("## 6. Many fits")
    assert "| sweep, local | 532 | 2 | 600.0 | 0.887 | 1.50 | 0.40 | 2.5 | 500 ok, 32 gate |" in text
    assert report.write_results(tmp_path / "RESULTS.md").count("## 6. Many fits") == 1
    assert "old text" not in text
    # each target carries its number and an honest verdict
    assert "| 20.0 s, R-hat 1.002 | met |" in text
    assert "(0.67x) | **missed** |" in text  # ESS/s below nutpie's
    assert "7.5x (warm-started refits, run)" in text and "**missed** against the run refits" in text
    assert "| 13.3x | met |" in text
    assert "failed: MemoryError" in text
    assert "| 2.5x (50 s vs 20 s) | met |" in text
    # the convergence corpus: its pass rate against the 95% target, and per data set
    assert "(numpyro) | 19 of 20 (95%) | met |" in text
    assert "| set0 | 10 / 10 |" in text and "| set1 | 9 / 10 |" in text


def _part(law, seed, reps, first, n, draws=100, thin=8):
    ranks = {"replicate": list(range(first, first + n)), "alpha": [k % (draws + 1) for k in range(n)],
             "divergences": [0] * n, "min_ess": [150.0] * n, "max_rhat": [1.0] * n, "steps": [7.0] * n,
             "centring": ["c"] * n, "failed": [False] * n, "seconds": [1.0] * n,
             "compiled": [k == 0 for k in range(n)]}
    settings = {"law": law, "reps": reps, "draws": draws, "seed": seed, "chains": 2, "warmup": 500,
                "thin": thin, "floor": 2.0, "likelihood": "normal", "target_accept": 0.99, "rows": 75,
                "families": 3, "runs": 15, "prior_redrawn": 0.0}
    return {"law": law, "ranks": ranks, "quantities": ["alpha"], "draws": draws, "settings": settings,
            "seconds": float(n), "date": "2026-11-26", "machine": "m", "versions": "v"}


def test_sbc_parts_join_seeds_and_refuse_mixed_settings(tmp_path):
    sbc_full = _module("sbc_full")
    folder = tmp_path / "power"
    folder.mkdir()
    for name, part in {"seed0-reps50-00000-00024.json": _part("power", 0, 50, 0, 25),
                       "seed0-reps50-00025-00049.json": _part("power", 0, 50, 25, 25),
                       "seed1-reps150-00000-00024.json": _part("power", 1, 150, 0, 25)}.items():
        (folder / name).write_text(json.dumps(part))
    merged, info = sbc_full._load_parts(tmp_path, ["power", "absent"])
    assert list(merged) == ["power"] and merged["power"].replications == 75
    assert info["power"]["seeds"] == [0, 1] and info["power"]["seconds"] == 75.0
    # seed 1's replicate 3 and seed 0's replicate 3 are different data sets, kept apart
    assert merged["power"].ranks["replicate"].is_unique
    (folder / "seed2-reps50-00000-00024.json").write_text(json.dumps(_part("power", 2, 50, 0, 25, thin=4)))
    with pytest.raises(SystemExit, match="differ in"):
        sbc_full._load_parts(tmp_path, ["power"])
    (folder / "seed2-reps50-00000-00024.json").write_text(json.dumps(_part("power", 0, 200, 0, 25)))
    with pytest.raises(SystemExit, match="overlap"):
        sbc_full._load_parts(tmp_path, ["power"])
