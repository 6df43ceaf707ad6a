"""Objects in a photo, measured through the served visual search chain.

Held-out photos: 2-4 products of the workspace's catalog from the test split
(``understand.composites.split_of``, fixed seed: the detector never trained on them) cut out of
their studio shots and pasted onto varied backgrounds (``understand.composites.compose``),
saved as JPEG and sent to the engine's visual surface without a crop (what
``POST /visual-search`` runs). Reported: the recall of the pasted objects at IoU 0.5, the
precision of the detections at IoU 0.5, the share of detected objects matched to a pasted
product (``found_in_row``) and of all detected objects (``found_of_detected``) whose row holds
that very product in its top ``k``, the share whose predicted
category is the product's, and, as the baseline, the share of pasted products found in the
top ``k`` of the whole photo's results.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from moodboard.data import Request
from moodboard.surfaces.visual import found_objects
from moodboard.understand.composites import Composite, Cutout, compose, cutout, iou, split_of


@dataclass
class ObjectsReport:
    """The figures of ``evaluate_objects`` (shares in 0-1)."""

    photos: int
    pasted: int
    detected: int
    recall_iou50: float
    precision_iou50: float
    found_in_row: float
    found_of_detected: float
    category_accuracy: float
    whole_photo_found: float
    k: int
    ms_p50: float
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        return dict(self.__dict__)


def heldout_pool(catalog: Any, limit: int = 600, seed: int = 0) -> tuple[list[Cutout], list[int]]:
    """Cut-outs of up to ``limit`` test-split products of ``catalog`` with a readable image,
    and their item indices."""
    rng = np.random.default_rng(seed)
    ids = catalog.ids.external(list(range(len(catalog))))
    cand = [i for i in range(len(catalog)) if catalog.image[i] and split_of(ids[i]) == "test"]
    pool: list[Cutout] = []
    items: list[int] = []
    for i in rng.permutation(cand) if cand else []:
        try:
            with Image.open(catalog.image[int(i)]) as im:
                c = cutout(im)
        except OSError:
            continue
        if c is not None:
            pool.append(c)
            items.append(int(i))
        if len(pool) == limit:
            break
    return pool, items


def photo_bytes(comp: Composite, quality: int = 90) -> bytes:
    """The photo as a JPEG file's bytes."""
    buf = io.BytesIO()
    Image.fromarray(comp.image).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def evaluate_objects(visual: Any, photos: int = 100, seed: int = 0) -> ObjectsReport:
    """Run ``photos`` held-out composite photos through the visual surface ``visual`` (a
    ``Surface`` of the engine) and measure its objects (see the module docstring).

    Raises
    ------
    InputError
        If the catalog has fewer than 4 test-split products with images.
    """
    from moodboard.errors import InputError

    catalog = visual.env.catalog
    pool, items = heldout_pool(catalog, seed=seed)
    if len(pool) < 4:
        raise InputError(
            f"evaluate objects needs at least 4 test-split products with images. Got "
            f"{len(pool)} instead."
        )
    leaf = catalog.leaf_category()
    k = int(visual.config.object_items)
    rng = np.random.default_rng(seed)
    pasted = detected = hit = right = found = cat_ok = matched = whole = 0
    ms: list[float] = []
    for _ in range(photos):
        comp = compose(rng, pool)
        t0 = time.perf_counter()
        res = visual.run(Request(surface="visual", image=photo_bytes(comp), k=k))
        ms.append((time.perf_counter() - t0) * 1e3)
        objects = found_objects(res)
        truth = [items[p] for p in comp.products]
        pasted += len(truth)
        detected += len(objects)
        hit += sum(any(iou(b, o.box) >= 0.5 for o in objects) for b in comp.boxes)
        top = set(res.candidates.items[:k].tolist())
        whole += sum(t in top for t in truth)
        for o in objects:
            overlaps = [iou(b, o.box) for b in comp.boxes]
            j = int(np.argmax(overlaps)) if overlaps else -1
            if j < 0 or overlaps[j] < 0.5:
                continue
            right += 1
            matched += 1
            row = o.items.items.tolist() if o.items is not None else []
            found += truth[j] in row[:k]
            cat_ok += o.guess is not None and o.guess.category == leaf[truth[j]]
    return ObjectsReport(
        photos=photos,
        pasted=pasted,
        detected=detected,
        recall_iou50=hit / max(pasted, 1),
        precision_iou50=right / max(detected, 1),
        found_in_row=found / max(matched, 1),
        found_of_detected=found / max(detected, 1),
        category_accuracy=cat_ok / max(matched, 1),
        whole_photo_found=whole / max(pasted, 1),
        k=k,
        ms_p50=float(np.median(ms)) if ms else 0.0,
        params={"seed": seed, "test_products": len(pool)},
    )
