"""Figures (bayescale.viz.plot): ``bs.plot`` draws what it is given, ``bs.ppc`` draws or counts."""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")  # the test process has no display; the library never sets a backend

import bayescale as bs  # noqa: E402
from bayescale.evaluate.sbc import SBCResult  # noqa: E402


@pytest.fixture(scope="module")
def fit():
    df = bs.datasets.simulate("power", families=2, seeds=1, sizes=(1e7, 1e8, 1e9), seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bs.fit(df, "power", y="loss", x="x", group="family", chains=2, warmup=100, draws=100,
                      extrapolation=False, progress=False)


def test_plot_of_a_fit_has_a_panel_per_family(fit):
    figure = bs.plot(fit)
    panels = [a for a in figure.axes if a.has_data()]
    assert len(panels) == fit.design.n_families
    assert all(a.get_xscale() == "log" for a in panels)


def test_plot_of_an_sbc_result_draws_a_histogram_per_quantity():
    ranks = pd.DataFrame({"replicate": range(20), "a": np.arange(20) % 11, "b": np.arange(20) % 7,
                          "failed": False})
    figure = bs.plot(SBCResult("power", ranks, ["a", "b"], 10, {}))
    assert sum(a.has_data() for a in figure.axes) == 2


def test_ppc_draws_or_counts(fit):
    assert len(bs.ppc(fit).axes) == 2
    table = bs.ppc(fit, summary=True)
    assert set(table["family"]) == {*fit.design.families, "all"}


def test_plot_refuses_what_it_cannot_draw():
    with pytest.raises(TypeError, match="draws a Fit, an Allocation or an SBC result"):
        bs.plot(pd.DataFrame())


def test_sampler_plots_show_the_shared_parameters_and_sigma_once(fit):
    from bayescale.viz.plot import rank_figure, sampler_variables, trace_figure

    # two families: the partially pooled E and a are fitted per family, alpha is shared
    assert sampler_variables(fit) == ["alpha", "sigma"]
    assert sampler_variables(fit, limit=1) == ["sigma"]
    alpha = fit.idata.posterior["alpha"]
    assert "family" in alpha.dims and np.allclose(alpha.isel(family=0), alpha.isel(family=1))
    for draw in (rank_figure, trace_figure):
        figure = draw(fit)
        titles = sorted(a.get_title() for a in figure.axes if a.has_data())
        assert titles == ["alpha", "sigma"], draw.__name__  # one panel each, not one per family
    trace = trace_figure(fit, var_names=["sigma"])
    lines = [line for a in trace.axes for line in a.get_lines()]
    assert len(lines) == fit.settings.chains  # one trace per chain


def test_sampler_plots_name_an_unknown_quantity(fit):
    from bayescale.viz.plot import rank_figure

    with pytest.raises(bs.BayescaleError, match="'beta'.*posterior has"):
        rank_figure(fit, var_names=["beta"])
