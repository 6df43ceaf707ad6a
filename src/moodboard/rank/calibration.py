"""Per-head calibration of a model's logits into probabilities, stored as plain numbers.

``platt``: a logistic regression on the logit (two numbers). ``isotonic``: a monotone step
function through sklearn's ``IsotonicRegression`` thresholds, applied by linear interpolation
and clipped at the ends as sklearn does. Both are fitted with sklearn and kept as lists in
JSON: nothing is pickled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from moodboard.errors import ConfigError
from moodboard.rank.metrics import paired

_log = logging.getLogger(__name__)

#: Probabilities stay this far from 0 and 1 (a log loss stays finite).
EPS = 1e-6
CalibrationMethod = Literal["platt", "isotonic"]


@dataclass(frozen=True)
class Calibrator:
    """A fitted logit -> probability map.

    Attributes
    ----------
    method
        ``platt``, ``isotonic`` or ``constant`` (held-out labels of a single class).
    x, y
        Platt: ``x = (slope,)``, ``y = (intercept,)``; isotonic: the thresholds (logits) and
        their probabilities; constant: ``y = (rate,)``.
    """

    method: str
    x: tuple[float, ...]
    y: tuple[float, ...]

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of ``logits``."""
        z = np.asarray(logits, dtype=np.float64)
        if self.method == "platt":
            p = 1.0 / (1.0 + np.exp(-(self.x[0] * z + self.y[0])))
        elif self.method == "isotonic":
            p = np.interp(z, self.x, self.y)
        else:
            p = np.full(z.shape, self.y[0])
        return np.clip(p, EPS, 1.0 - EPS)

    def to_json(self) -> dict[str, Any]:
        """``{"method", "x", "y"}``."""
        return {"method": self.method, "x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Calibrator:
        """From ``to_json``'s output.

        Raises
        ------
        ConfigError
            If the method is unknown.
        """
        if d.get("method") not in ("platt", "isotonic", "constant"):
            raise ConfigError(
                f"A calibrator's method must be platt, isotonic or constant. "
                f"Got {d.get('method')!r} instead: the model file is damaged, retrain it."
            )
        return cls(str(d["method"]), tuple(map(float, d["x"])), tuple(map(float, d["y"])))


def fit_calibrator(
    logits: np.ndarray, labels: np.ndarray, method: CalibrationMethod = "platt"
) -> Calibrator:
    """Fit ``method`` on held-out ``logits`` and their 0/1 ``labels``.

    Raises
    ------
    ValueError
        If the lengths differ or there are no rows.
    """
    z, y = paired(logits, labels, "fit_calibrator")
    rate = float(y.mean())
    if rate in (0.0, 1.0):
        _log.warning("calibration rows hold one class only (rate %.0f): constant", rate)
        return Calibrator("constant", (), (rate,))
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(z, y)
        return Calibrator(
            "isotonic", tuple(map(float, iso.X_thresholds_)), tuple(map(float, iso.y_thresholds_))
        )
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e6).fit(z[:, None], y)
    return Calibrator("platt", (float(lr.coef_[0, 0]),), (float(lr.intercept_[0]),))
