"""Assignment: deterministic hashing, arm shares, layers, holdout, windows, and the refusals
that say what to fix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy import stats

from moodboard.config import Settings
from moodboard.errors import ConfigError
from moodboard.experiment.assign import Assigner, allocate, arm_of, bucket, check_experiments
from moodboard.experiment.spec import ExperimentSettings, ExperimentSpec
from moodboard.experiment.store import ExperimentStore, parse_spec

NOW = datetime(2026, 1, 10, tzinfo=UTC)
USERS = [f"u{i}" for i in range(20_000)]


def spec(name: str, weights=(0.5, 0.5), **kw) -> ExperimentSpec:
    arms = [
        {"name": f"a{j}", "weight": w, "overrides": {"surfaces.feed.explore_share": j / 10}}
        for j, w in enumerate(weights)
    ]
    return ExperimentSpec.model_validate({"name": name, "arms": arms} | kw)


def test_buckets_are_stable_across_processes_and_salts_are_independent() -> None:
    # a fixed value: the hash is blake2b, never Python's per-process hash()
    assert bucket("exp", "user-1", 10_000) == bucket("exp", "user-1", 10_000)
    a = np.array([bucket("s1", u, 100) for u in USERS[:5000]])
    b = np.array([bucket("s2", u, 100) for u in USERS[:5000]])
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.05
    # uniform over the buckets (chi-square goodness of fit)
    assert stats.chisquare(np.bincount(a, minlength=100)).pvalue > 0.001


def test_arm_shares_follow_the_weights() -> None:
    s = spec("w", weights=(0.2, 0.3, 0.5))
    arms = [arm_of(s, u, 10_000) for u in USERS]
    counts = [arms.count(f"a{j}") for j in range(3)]
    p = stats.chisquare(counts, [0.2 * len(USERS), 0.3 * len(USERS), 0.5 * len(USERS)]).pvalue
    assert p > 0.001, counts


def test_a_layer_keeps_its_experiments_apart_and_layers_are_independent() -> None:
    settings = ExperimentSettings()
    one = allocate(spec("one", traffic=0.3, layer="feed"), [], settings.buckets)
    two = allocate(spec("two", traffic=0.5, layer="feed"), [one], settings.buckets)
    assert one.buckets == (0, 3000) and two.buckets == (3000, 8000)
    other = spec("other", layer="search", buckets=(0, 10_000))
    other = other.model_copy(
        update={"arms": tuple(a.model_copy(update={"overrides": {}}) for a in other.arms)}
    )
    assign = Assigner([one, two, other], settings)
    got = [assign(u, NOW).arms for u in USERS[:10_000]]
    in_one = np.array(["one" in g for g in got])
    in_two = np.array(["two" in g for g in got])
    assert not (in_one & in_two).any()
    assert abs(in_one.mean() - 0.3) < 0.02 and abs(in_two.mean() - 0.5) < 0.02
    assert all("other" in g for g in got)  # another layer: everyone, independently


def test_overlap_in_a_layer_is_refused_with_what_to_fix() -> None:
    one = spec("one", buckets=(0, 6000))
    with pytest.raises(ConfigError, match="overlaps experiment 'one' in layer 'default'"):
        allocate(spec("two", buckets=(5000, 9000)), [one], 10_000)
    with pytest.raises(ConfigError, match="no free range of 5000 buckets"):
        allocate(spec("two", traffic=0.5), [one], 10_000)
    with pytest.raises(ConfigError, match="overlaps"):
        check_experiments([one, spec("two", buckets=(5999, 7000))], 10_000)


def test_two_layers_overriding_one_key_are_refused() -> None:
    a = spec("a", layer="x", buckets=(0, 10_000))
    b = spec("b", layer="y", buckets=(0, 10_000))
    with pytest.raises(ConfigError, match="both override"):
        check_experiments([a, b], 10_000)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"arms": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.6}]}, "sum to 1"),
        ({"arms": [{"name": "a", "weight": 1.0}]}, "at least 2"),
        (
            {"arms": [{"name": "a", "weight": 0.5}, {"name": "a", "weight": 0.5}]},
            "must be distinct",
        ),
        (
            {
                "arms": [
                    {"name": "a", "weight": 0.5},
                    {"name": "b", "weight": 0.5, "overrides": {"rank.multihead.depth": 5}},
                ]
            },
            "not a serving-time setting",
        ),
        ({"name": "bad name!", "arms": []}, "name"),
    ],
)
def test_bad_experiments_are_refused_with_a_message(data: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_spec({"name": "e"} | data)


def test_unknown_override_key_is_refused_at_create(tmp_path) -> None:
    store = ExperimentStore(tmp_path)
    bad = parse_spec(
        {
            "name": "e",
            "arms": [
                {"name": "a", "weight": 0.5},
                {"name": "b", "weight": 0.5, "overrides": {"surfaces.feed.no_such_key": 1}},
            ],
        }
    )
    with pytest.raises(ConfigError, match="no_such_key"):
        store.create(bad, Settings(), None)
    assert not store.folder.exists() or not list(store.folder.glob("*.json"))


def test_create_refuses_a_ranker_the_artifact_has_not_built(tmp_path) -> None:
    store = ExperimentStore(tmp_path)
    want = parse_spec(
        {
            "name": "e",
            "arms": [
                {"name": "a", "weight": 0.5},
                {
                    "name": "b",
                    "weight": 0.5,
                    "overrides": {"surfaces.feed.ranker": "rank/multihead"},
                },
            ],
        }
    )
    manifest = {"components": {"rank/multihead": {"path": None, "reason": "too few logs"}}}
    with pytest.raises(ConfigError, match="has not built"):
        store.create(want, Settings(), manifest)


def test_holdout_windows_and_anonymous_shoppers_get_no_arms() -> None:
    start, stop = NOW, NOW + timedelta(days=7)
    s = allocate(spec("w", start=start, stop=stop), [], 10_000)
    assign = Assigner([s], ExperimentSettings(holdout=0.1))
    assert assign(None, NOW).arms == {}
    assert assign("u1", start - timedelta(seconds=1)).arms == {}
    assert assign("u1", stop).arms == {}
    held = np.mean([assign(u, NOW).arms == {} for u in USERS[:5000]])
    assert 0.08 < held < 0.12
    stopped = s.model_copy(update={"status": "stopped"})
    assert Assigner([stopped], ExperimentSettings())("u1", NOW).arms == {}


def test_store_round_trips_and_stop_keeps_the_reason(tmp_path) -> None:
    store = ExperimentStore(tmp_path)
    made = store.create(spec("e1"), Settings(), None)
    assert store.get("e1") == made and made.buckets == (0, 10_000)
    sig = store.signature()
    stopped = store.stop("e1", "guardrail: hides went up", NOW)
    assert store.signature() != sig
    assert store.get("e1").status == "stopped" and stopped.stopped_reason.startswith("guardrail")
    # a broken file is left out with its reason, never blocks the others
    (store.folder / "junk.json").write_text("{not json")
    assert [s.name for s in store.load()] == ["e1"]
