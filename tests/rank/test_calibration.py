"""Per-head calibration kept as numbers, against sklearn's own fitted objects."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from moodboard.errors import ConfigError
from moodboard.rank import Calibrator, fit_calibrator
from moodboard.rank.metrics import expected_calibration_error


def _rows(n: int = 20000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, n)
    return z, (rng.random(n) < 1 / (1 + np.exp(-(0.5 * z - 1.0)))).astype(float)


def test_platt_recovers_a_known_logistic_map_and_survives_json() -> None:
    z, y = _rows()
    c = fit_calibrator(z, y, "platt")
    assert c.x[0] == pytest.approx(0.5, abs=0.05) and c.y[0] == pytest.approx(-1.0, abs=0.08)
    assert Calibrator.from_json(c.to_json()) == c
    assert expected_calibration_error(y, c(z)) < 0.02
    assert expected_calibration_error(y, 1 / (1 + np.exp(-z))) > 0.1  # uncalibrated logits


def test_isotonic_numbers_predict_as_sklearn_does() -> None:
    z, y = _rows()
    c = fit_calibrator(z, y, "isotonic")
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(z, y)
    probe = np.linspace(-9, 9, 500)
    np.testing.assert_allclose(c(probe), np.clip(iso.predict(probe), 1e-6, 1 - 1e-6))
    assert Calibrator.from_json(c.to_json()) == c


def test_single_class_rows_give_a_constant_and_bad_input_names_the_fix() -> None:
    c = fit_calibrator(np.arange(5.0), np.zeros(5))
    assert c.method == "constant" and c(np.array([100.0]))[0] < 1e-5
    with pytest.raises(ValueError, match="as many labels"):
        fit_calibrator(np.zeros(3), np.zeros(2))
    with pytest.raises(ConfigError, match="platt, isotonic or constant"):
        Calibrator.from_json({"method": "pickle", "x": [], "y": []})


def test_ece_by_hand() -> None:
    # bin 0.1-0.2 holds p 0.15 x2 with one positive (|0.5 - 0.15|); bin 0.9 holds p 0.95, y 1
    p = np.array([0.15, 0.15, 0.95])
    y = np.array([0.0, 1.0, 1.0])
    assert expected_calibration_error(y, p, bins=10) == pytest.approx((2 * 0.35 + 0.05) / 3)
