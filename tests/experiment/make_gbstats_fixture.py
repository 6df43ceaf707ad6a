"""Write gbstats_reference.json: GrowthBook's gbstats results for a few sufficient statistics.

Run ONLY in a separate venv with gbstats (it pins pandas < 2 and numpy < 2), never in the
project's venv and never from the tests::

    python3 -m venv /tmp/gbvenv
    /tmp/gbvenv/bin/pip install gbstats==0.8.0      # pulled numpy 1.26.4, pandas 1.5.3
    /tmp/gbvenv/bin/python tests/experiment/make_gbstats_fixture.py

The test ``test_bayes.py`` compares ``moodboard.experiment.bayes.effect_bayes`` to the file.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import numpy as np
from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior
from gbstats.models.statistics import ProportionStatistic, RatioStatistic, SampleMeanStatistic

OUT = Path(__file__).with_name("gbstats_reference.json")


def moments(y: np.ndarray, x: np.ndarray | None = None) -> dict[str, float]:
    out = {"n": float(y.size), "sum_y": float(y.sum()), "sum_y2": float(y @ y)}
    if x is not None:
        out |= {"sum_x": float(x.sum()), "sum_x2": float(x @ x), "sum_xy": float(x @ y)}
    return out


def statistic(m: dict[str, float], kind: str):
    n = int(m["n"])
    if kind == "proportion":
        return ProportionStatistic(n=n, sum=m["sum_y"])
    y = SampleMeanStatistic(n=n, sum=m["sum_y"], sum_squares=m["sum_y2"])
    if kind == "mean":
        return y
    x = SampleMeanStatistic(n=n, sum=m["sum_x"], sum_squares=m["sum_x2"])
    return RatioStatistic(n=n, m_statistic=y, d_statistic=x, m_d_sum_of_products=m["sum_xy"])


def main() -> None:
    rng = np.random.default_rng(20260514)
    cases = []

    def add(name, kind, c, t, difference="relative", inverse=False, prior=None, alpha=0.05):
        config = EffectBayesianConfig(
            difference_type=difference,
            inverse=inverse,
            alpha=alpha,
            prior_effect=GaussianPrior(*prior, proper=True) if prior else GaussianPrior(),
        )
        res = EffectBayesianABTest(statistic(c, kind), statistic(t, kind), config).compute_result()
        assert res.error_message is None, res.error_message
        cases.append(
            {
                "name": name,
                "kind": kind,
                "difference": difference,
                "inverse": inverse,
                "prior": prior,
                "alpha": alpha,
                "control": c,
                "treatment": t,
                "gbstats": {
                    "expected": res.expected,
                    "stddev": res.uplift.stddev,
                    "ci": list(res.ci),
                    "chance_to_win": res.chance_to_win,
                    "risk": list(res.risk),
                    "risk_type": res.risk_type,
                },
            }
        )

    def rev(n, scale):  # revenue per user: mostly zero, lognormal spend
        return rng.binomial(1, 0.2, n) * rng.lognormal(3.0, 1.0, n) * scale

    def conv(n, p):
        return rng.binomial(1, p, n).astype(float)

    add("mean positive relative", "mean", moments(rev(4000, 1.0)), moments(rev(4100, 1.08)))
    add(
        "mean negative absolute",
        "mean",
        moments(rev(3000, 1.0)),
        moments(rev(3000, 0.9)),
        difference="absolute",
    )
    add("mean no effect", "mean", moments(rev(5000, 1.0)), moments(rev(5000, 1.0)))
    add("proportion positive", "proportion", moments(conv(10000, 0.10)), moments(conv(10000, 0.11)))
    add(
        "proportion negative inverse",
        "proportion",
        moments(conv(8000, 0.05)),
        moments(conv(8000, 0.045)),
        inverse=True,
    )
    add(
        "proportion no effect absolute",
        "proportion",
        moments(conv(6000, 0.3)),
        moments(conv(6000, 0.3)),
        difference="absolute",
    )
    imp_c, imp_t = rng.poisson(20, 3000) + 1.0, rng.poisson(20, 3000) + 1.0
    add(
        "ratio ctr positive",
        "ratio",
        moments(rng.binomial(imp_c.astype(int), 0.05), imp_c),
        moments(rng.binomial(imp_t.astype(int), 0.055), imp_t),
    )
    add(
        "mean proper prior",
        "mean",
        moments(rev(2000, 1.0)),
        moments(rev(2000, 1.1)),
        prior=(0.0, 0.01),
        alpha=0.1,
    )
    add(
        "mean proper prior absolute",
        "mean",
        moments(rev(2000, 1.0)),
        moments(rev(2000, 1.1)),
        difference="absolute",
        prior=(0.02, 0.05),
    )
    OUT.write_text(json.dumps({"gbstats": version("gbstats"), "cases": cases}, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
