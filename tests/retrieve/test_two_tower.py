"""``two_tower`` on a checkerboard: two user communities x two item groups, plus cold items.

Items 0..19 are group A, 20..39 group B; A-users engage only with A items, B-users only with B.
Item 40 is in the catalog with content only (a text vector close to group A's, no events): the
day-one cold start. Item 41 arrives after training through ``add_items``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from moodboard.config import TwoTowerConfig
from moodboard.errors import ConfigError
from moodboard.retrieve import CandidateSource, TrainingData
from moodboard.retrieve.item_features import attribute_codes, split_features
from moodboard.retrieve.two_tower import TwoTower

GROUP = 20
N_USERS = 30  # per community
CFG = TwoTowerConfig(dim=16, hidden=32, epochs=12, batch_size=64, random_negatives=16)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _checkerboard(content: bool, seed: int = 0) -> tuple[TrainingData, list[str], dict]:
    rng = np.random.default_rng(seed)
    centre = _unit(rng.normal(size=(2, 384)))
    text = _unit(np.repeat(centre, GROUP, axis=0) + 0.04 * rng.normal(size=(2 * GROUP, 384)))
    text = np.vstack([text, _unit(centre[0] + 0.04 * rng.normal(size=384))])  # item 40, cold
    seqs, users = [], []
    for c in range(2):
        for u in range(N_USERS):
            seqs.append(c * GROUP + rng.choice(GROUP, size=12, replace=True))
            users.append(f"{'ab'[c]}{u}")
    features: dict = {}
    if content:
        image = _unit(rng.normal(size=(2 * GROUP + 1, 64))).astype(np.float32)  # no group signal
        colour = rng.integers(-1, 5, size=2 * GROUP + 1)  # a noise attribute, -1 missing
        features = {"text": text.astype(np.float32), "image": image, "attributes": colour}
    data = TrainingData(n_items=2 * GROUP + (1 if content else 0), sequences=seqs,
                        item_features=features)  # fmt: skip
    return data, users, {"centre": centre, "rng": rng}


@pytest.fixture(scope="module")
def fitted() -> tuple[TwoTower, TrainingData, list[str], dict]:
    data, users, extra = _checkerboard(content=True)
    return TwoTower(CFG).fit(replace(data, users=users)), data, users, extra


def _group_share(scores: np.ndarray, k: int = 10) -> np.ndarray:
    """Share of each row's top k among items of its own community's group."""
    top = np.argsort(-scores[:, : 2 * GROUP], axis=1)[:, :k]
    own = np.repeat([0, 1], N_USERS)[:, None]
    return ((top // GROUP) == own).mean(axis=1)


def test_learns_the_checkerboard_from_ids_alone() -> None:
    data, users, _ = _checkerboard(content=False)
    rec = TwoTower(CFG).fit(replace(data, users=users))
    assert isinstance(rec, CandidateSource) and rec.name == "two_tower"
    assert rec.stats["loss"][-1] < rec.stats["loss"][0]
    histories = [s[:6] for s in data.sequences]
    scores = rec.score(histories)
    assert scores.shape == (2 * N_USERS, 2 * GROUP) and scores.dtype == np.float32
    assert _group_share(scores).mean() >= 0.95
    # an untrained model does not: the signal is learned
    untrained = TwoTower(CFG.model_copy(update={"epochs": 1, "lr": 1e-9})).fit(
        replace(data, users=users)
    )
    assert _group_share(untrained.score(histories)).mean() < 0.8


def test_learns_the_checkerboard_with_content(fitted) -> None:
    rec, data, users, _ = fitted
    scores = rec.score([s[:6] for s in data.sequences], users=users)
    assert _group_share(scores).mean() >= 0.95
    assert rec.stats["cold_items"] == 1
    again = TwoTower(CFG).fit(replace(data, users=users))  # same seed, same model
    np.testing.assert_allclose(again.item_vectors(), rec.item_vectors(), atol=1e-5)


def test_a_new_item_with_content_only_is_retrieved_for_its_community(
    fitted, tmp_path: Path
) -> None:
    rec, data, users, extra = fitted
    histories = [s[-6:] for s in data.sequences]
    scores = rec.score(histories, users=users)
    a, b = scores[:N_USERS], scores[N_USERS:]
    # item 40 (in the catalog, never engaged with): above every B item for every A-user,
    # below every B item for every B-user
    assert np.all(a[:, 40] > a[:, GROUP : 2 * GROUP].max(axis=1))
    assert np.all(b[:, 40] < b[:, GROUP : 2 * GROUP].min(axis=1))
    assert np.all(a[:, 40] > np.median(a[:, :GROUP], axis=1) - 0.5)  # near the warm A items
    # item 41 arrives after training with a text vector close to group A's
    rng = extra["rng"]
    new = {
        "text": _unit(extra["centre"][0] + 0.04 * rng.normal(size=(1, 384))).astype(np.float32),
        "image": rng.normal(size=(1, 64)).astype(np.float32),
        "attributes": np.array([2]),
    }
    rec.save(tmp_path / "copy")
    rec2 = TwoTower.load(tmp_path / "copy")
    before = rec2.n_items
    rec2.add_items(new)
    assert rec2.n_items == before + 1 == 42
    a2 = rec2.score(histories[:N_USERS], users=users[:N_USERS])
    b2 = rec2.score(histories[N_USERS:], users=users[N_USERS:])
    assert np.all(a2[:, 41] > a2[:, GROUP : 2 * GROUP].max(axis=1))
    assert np.all(b2[:, 41] < b2[:, GROUP : 2 * GROUP].min(axis=1))
    top_a = rec2.top_items(histories[0], k=GROUP + 2, user=users[0])  # 20 warm A + 2 cold A
    top_b = rec2.top_items(histories[-1], k=GROUP, user=users[-1])  # the 20 B items
    assert 41 in top_a.items and 41 not in top_b.items
    assert set(top_b.items.tolist()) == set(range(GROUP, 2 * GROUP))
    assert set(top_a.sources) == {"two_tower"}
    # an unknown user with an A history gets A items, too (hashed id bucket)
    cold_user = rec2.score([histories[0]], users=["somebody-new"])[0]
    assert np.mean(np.argsort(-cold_user[: 2 * GROUP])[:10] < GROUP) >= 0.9


def test_filtered_search_and_empty_history(fitted) -> None:
    rec, data, _, _ = fitted
    allowed = np.zeros(rec.n_items, dtype=bool)
    allowed[[3, 25, 30]] = True
    top = rec.top_items(data.sequences[0], k=10, allowed=allowed)
    assert sorted(top.items.tolist()) == [3, 25, 30]
    assert top.items[0] == 3  # the A item first for an A user
    v = rec.user_vector(np.array([], dtype=np.int64), None)
    assert v.shape == (CFG.dim,) and np.isfinite(v).all()


def test_save_load_gives_the_same_scores(fitted, tmp_path: Path) -> None:
    rec, data, users, _ = fitted
    rec.save(tmp_path / "tt")
    again = TwoTower.load(tmp_path / "tt")
    hist = [s[-5:] for s in data.sequences[:8]]
    who = [*users[:4], "unknown-1", None, *users[6:8]]
    np.testing.assert_allclose(again.score(hist, users=who), rec.score(hist, users=who), atol=1e-6)
    np.testing.assert_array_equal(again.item_vectors(), rec.item_vectors())
    assert again.config == rec.config
    assert again.top_items(hist[0], 5).items.tolist() == rec.top_items(hist[0], 5).items.tolist()


def test_errors_say_what_to_fix() -> None:
    with pytest.raises(ConfigError, match=r"0\.\.4"):
        TwoTower(CFG).fit(TrainingData(5, [np.array([1, 7])]))
    with pytest.raises(ConfigError, match="one row per item"):
        TwoTower(CFG).fit(TrainingData(5, [np.array([1, 2])], {"text": np.zeros((4, 8))}))


def test_attribute_codes_skip_constant_columns_and_mark_missing() -> None:
    cols = [
        np.array(["x", "y", None, "x"], dtype=object),
        np.array(["c", "c", "c", "c"], dtype=object),
    ]
    codes = attribute_codes(cols)
    assert codes.shape == (4, 1)
    assert codes[:, 0].tolist() == [0, 1, -1, 0]


def test_attribute_bags_become_mean_vectors_and_train() -> None:
    bags = [np.array([7, 9]), np.array([9]), np.array([], dtype=np.int64), np.array([3, 7, 9])]
    dense, codes = split_features({"attributes": bags}, 4)
    assert codes is None
    np.testing.assert_allclose(
        dense["attributes"],  # vocabulary 3, 7, 9
        [[0, 0.5, 0.5], [0, 0, 1], [0, 0, 0], [1 / 3, 1 / 3, 1 / 3]],
        rtol=1e-6,
    )
    rng = np.random.default_rng(0)
    seqs = [rng.permutation(2) + (2 if u % 2 else 0) for u in range(40)]
    tags = [np.array([1, 5]), np.array([1]), np.array([2, 6, 8]), np.array([2])]
    data = TrainingData(4, seqs, item_features={"attributes": tags})
    model = TwoTower(TwoTowerConfig(epochs=2, dim=8, hidden=16)).fit(data)
    assert model.score([np.array([0])]).shape == (1, 4)
