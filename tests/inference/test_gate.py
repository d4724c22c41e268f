"""The diagnostics gate (bayescale.inference.gate) on constructed DataTrees whose verdict is known.

Each case is built far from the thresholds, so its verdict does not depend on the CPU: well-mixed
independent chains pass every check; chains centred apart fail R-hat; a slow random walk fails
both ESS checks; flagged transitions fail the divergence check; a random-walk energy fails E-BFMI.
"""

from __future__ import annotations

import arviz_base as azb
import numpy as np
import pytest

from bayescale.inference import gate

CHAINS, DRAWS = 4, 1000


def tree(a: np.ndarray, diverging=None, energy=None):
    rng = np.random.default_rng(1)
    stats = {"diverging": np.zeros(a.shape, bool) if diverging is None else diverging,
             "energy": rng.normal(size=a.shape) if energy is None else energy}
    return azb.from_dict({"posterior": {"a": a}, "sample_stats": stats})


def kinds(idata, chains=CHAINS) -> set:
    _, found = gate.gate(idata, ["a"], chains)
    return {w.kind for w in found}


@pytest.fixture
def iid():
    return np.random.default_rng(0).normal(size=(CHAINS, DRAWS))


def test_independent_well_mixed_chains_pass(iid):
    diag, found = gate.gate(tree(iid), ["a"], CHAINS)
    assert found == []
    assert diag.loc["a", "r_hat"] < gate.RHAT_MAX and diag.loc["a", "ess_bulk"] > 2 * gate.ESS_MIN


def test_chains_centred_apart_fail_rhat(iid):
    shifted = iid + np.arange(CHAINS)[:, None]  # one sd between chain means
    assert "rhat" in kinds(tree(shifted))


def test_rhat_is_not_checked_with_one_chain(iid):
    assert "rhat" not in kinds(tree(iid[:1] + 5.0), chains=1)


def test_a_slow_random_walk_fails_both_ess_checks():
    steps = np.random.default_rng(2).normal(scale=0.01, size=(CHAINS, DRAWS))
    found = kinds(tree(np.cumsum(steps, axis=1)))
    assert {"ess_bulk", "ess_tail"} <= found


def test_one_divergent_transition_fails_and_is_counted(iid):
    diverging = np.zeros(iid.shape, bool)
    diverging[2, 17] = True
    _, found = gate.gate(tree(iid, diverging=diverging), ["a"], CHAINS)
    (w,) = [w for w in found if w.kind == "divergences"]
    assert str(w).startswith("[divergences] 1 divergent transition") and "target_accept" in str(w)


def test_a_random_walk_energy_fails_bfmi(iid):
    walk = np.cumsum(np.random.default_rng(3).normal(size=iid.shape), axis=1)
    assert kinds(tree(iid, energy=walk)) == {"bfmi"}


def test_messages_name_the_quantity_and_what_to_do(iid):
    shifted = iid + np.arange(CHAINS)[:, None]
    _, found = gate.gate(tree(shifted), ["a"], CHAINS)
    (w,) = [w for w in found if w.kind == "rhat"]
    assert "for a " in str(w) and "warmup" in str(w)


def test_every_failure_kind_is_a_gate_kind(iid):
    walk = np.cumsum(np.random.default_rng(4).normal(scale=0.01, size=iid.shape), axis=1)
    diverging = np.ones(iid.shape, bool)
    found = kinds(tree(walk + np.arange(CHAINS)[:, None], diverging=diverging, energy=walk))
    assert found == set(gate.GATE_KINDS)
