"""The parts of shop the look that need no engine: the category classifier (against
scikit-learn, saved and loaded), the detector's box decoding, and the synthetic photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression

from moodboard.errors import InputError, NotFittedError
from moodboard.understand.categorize import CategoryClassifier, CategoryConfig
from moodboard.understand.composites import Cutout, compose, cutout, iou, split_of
from moodboard.understand.detect import DetectorConfig, ObjectDetector, decode


def _blobs(n_classes: int, n: int = 400) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(n_classes, 8)) * 3
    y = rng.integers(n_classes, size=n)
    return centers[y] + rng.normal(size=(n, 8)), [f"c{v}" for v in y]


@pytest.mark.parametrize("n_classes", [2, 5])
def test_the_classifier_gives_scikit_learns_probabilities(n_classes: int, tmp_path: Path) -> None:
    x, labels = _blobs(n_classes)
    cfg = CategoryConfig(held_out=0.0)
    clf = CategoryClassifier(cfg).fit(x, labels)
    # the oracle fits the float32 rows the classifier fits: a float64 fit stops lbfgs at
    # another point within its tolerance (1.9e-4 apart on an AVX2 EPYC, 2026-12-07)
    x = x.astype(np.float32)
    ref = LogisticRegression(C=cfg.c, max_iter=cfg.max_iter).fit(x, labels)
    np.testing.assert_allclose(clf.predict_proba(x), ref.predict_proba(x), atol=1e-4)
    assert clf.classes == list(ref.classes_)
    clf.save(tmp_path / "clf")
    back = CategoryClassifier.load(tmp_path / "clf")
    assert back.predict(x[:20]) == clf.predict(x[:20])


def test_the_classifier_measures_itself_and_refuses_what_it_cannot_learn(tmp_path: Path) -> None:
    x, labels = _blobs(4)
    clf = CategoryClassifier(CategoryConfig(held_out=0.25)).fit(x, labels)
    assert clf.metrics["accuracy"] > 0.9 and clf.metrics["held_out"] > 50
    with pytest.raises(InputError, match="two categories"):
        CategoryClassifier(CategoryConfig(min_items=1000)).fit(x, labels)
    with pytest.raises(NotFittedError):
        CategoryClassifier().predict(x[:1])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "classifier.json").write_text("{")
    with pytest.raises(InputError, match="rebuild"):
        CategoryClassifier.load(tmp_path / "bad")


def _out(cells: dict[tuple[int, int], tuple[float, float, float, float]], g: int = 10):
    out = np.full((5, g, g), -8.0, dtype=np.float32)
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    for (r, c), (ox, oy, sw, sh) in cells.items():
        out[:, r, c] = (4.0, logit(ox), logit(oy), logit(sw), logit(sh))
    return out


def test_boxes_decode_to_pixels_of_the_photo_and_are_bounded() -> None:
    cfg = DetectorConfig(max_objects=2)
    out = _out({(2, 3): (0.5, 0.5, 0.2, 0.3), (7, 7): (0.5, 0.5, 0.1, 0.1), (0, 0): (0.1,) * 4})
    boxes = [d.box for d in decode(out, 400, 200, cfg)]
    assert len(boxes) == 2  # the cap
    assert boxes[0] == (100, 20, 80, 60)  # centre (3.5 / 10 * 400, 2.5 / 10 * 200)
    for d in decode(out, 400, 200, DetectorConfig(max_objects=8)):
        x, y, w, h = d.box
        assert x >= 0 and y >= 0 and x + w <= 400 and y + h <= 200
    assert decode(_out({}), 400, 200, cfg) == []  # nothing over the threshold


def test_the_packaged_detector_finds_products_pasted_on_a_background(
    datasets_root: Path,
) -> None:
    images = datasets_root / "fashion-product-images-small" / "images"
    files = sorted(images.glob("1*.jpg"))[:200]
    pool = [cutout(Image.open(f)) for f in files if split_of(f.stem) == "test"][:12]
    pool = [c for c in pool if c is not None]  # products the detector never trained on
    assert len(pool) >= 8
    det = ObjectDetector()
    rng = np.random.default_rng(0)
    pasted = hit = 0
    for _ in range(8):
        comp = compose(rng, pool)  # type: ignore[arg-type]
        found = det(Image.fromarray(comp.image))
        assert len(found) <= 4 and all(0 < d.score <= 1 for d in found)
        pasted += len(comp.boxes)
        hit += sum(any(iou(b, d.box) >= 0.5 for d in found) for b in comp.boxes)
    assert det.metadata["hidden"] == "96"  # loaded from the package's safetensors
    assert hit / pasted >= 0.6, (hit, pasted)


def test_composites_are_reproducible_and_boxes_hold_the_products() -> None:
    rng = np.random.default_rng(0)
    pool = [Cutout(np.full((60, 40, 3), v, np.uint8), np.ones((60, 40), bool)) for v in (10, 90)]
    a, b = compose(np.random.default_rng(3), pool), compose(np.random.default_rng(3), pool)
    assert np.array_equal(a.image, b.image) and a.boxes == b.boxes
    comp = compose(rng, pool, n_range=(2, 2))
    assert len(comp.boxes) == 2 and iou(comp.boxes[0], comp.boxes[1]) <= 0.1
    for (x, y, w, h), p in zip(comp.boxes, comp.products, strict=True):
        assert (comp.image[y : y + h, x : x + w] == pool[p].rgb[0, 0]).all(axis=2).mean() > 0.9
    shares = [split_of(str(i)) == "test" for i in range(5000)]
    assert 0.17 < np.mean(shares) < 0.23 and split_of("15970") == split_of("15970")
