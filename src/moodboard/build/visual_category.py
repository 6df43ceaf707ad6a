"""``visual/category``: the category classifier over the built ``visual/image`` vectors.

It runs after the visual step and reads the vectors that step saved (so it fits whatever the
served image space is), labels each item by the last level of its category path, and records
its held-out accuracy in the manifest. Visual search predicts the category of an upload (and
of each object in it) with it (``surfaces.visual``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from moodboard.build.context import BuildContext
from moodboard.build.layout import part
from moodboard.build.steps import BuildStep
from moodboard.errors import InputError
from moodboard.retrieve.registry import load_source
from moodboard.understand.categorize import CategoryClassifier, CategoryConfig

#: The visual source whose vectors it is fitted on.
VISUAL = "visual/image"


class VisualCategoryStep(BuildStep):
    """``visual/category``: image vector -> category (multinomial logistic regression).

    Parameters
    ----------
    config
        The classifier's parameters; default ``CategoryConfig()``.
    """

    name = "visual/category"

    def __init__(self, config: CategoryConfig | None = None) -> None:
        self.config = config if config is not None else CategoryConfig()

    def message(self, ctx: BuildContext) -> str:
        return "learning the categories of product images"

    def _build(self, ctx: BuildContext, out: Path) -> dict[str, dict[str, Any]]:
        if not self.config.enabled:
            return self._untrained("disabled (surfaces.visual.category.enabled)")
        folder = out / part(VISUAL).folder
        if not folder.is_dir():
            return self._untrained("the catalog has no images")
        vectors = load_source(folder, ctx.catalog).item_vectors()
        if vectors is None:
            return self._untrained("the visual source has no vectors")
        try:
            clf = CategoryClassifier(self.config).fit(vectors, ctx.catalog.leaf_category())
        except InputError as exc:
            return self._untrained(str(exc))
        clf.save(out / self.folder)
        return {self.name: {"path": self.folder, **clf.metrics}}
