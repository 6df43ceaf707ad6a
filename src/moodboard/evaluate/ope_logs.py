"""Off-policy evaluation of the home feed's module policy on the engine's own logs.

**Formulation: a contextual bandit per row.** A round is one row ``j`` that the module policy
(``blend.modules.order_modules``) drew on one served feed page (one ``request_id``) and that
kept items. Its context is the page's candidate modules, the ids the policy drew among in its
order (the impressions' ``props.module_among``), and the row ``j`` (``props.module_row``); its
action is the module shown at the row (``props.module``), named across pages by its kind and
its rank among the candidates of that kind (``board``, ``board#2``, ``viewed``, ``trending``,
``new``); its reward is 1 when at least one of the row's items got the ``reward`` action
(``click`` by default) of the same request within the label window, else 0 (the labels join:
``pipelines.labels.impression_heads``). A policy's value is the expected reward per row drawn,
``V(pi) = E_t sum_m pi(m | t) r(t, m)``, and the estimators of ``evaluate.ope`` estimate it
from the rounds (``BanditFeedback`` with one slot: the row is part of the context).

**The propensities it reads.** The logging policy's probability of the shown module at its
row is the impressions' logged ``propensity`` (the row's, written by the server when it
served the page; rounded to 6 digits), never recomputed. The evaluation policy's probability
of every candidate at the row is the same closed form under the candidate's settings
(``policy_probabilities``, vectorized over the rounds): ``(1 - eps) [greedy(j) = m] + eps / n``
with ``greedy`` the candidates by weight of their kind (the earlier first on ties) and ``n``
the candidates. A candidate policy is the workspace's module policy with
``surfaces.feed.modules.weights`` and ``surfaces.feed.modules.epsilon`` overridden
(``candidate_policy``); the other module settings decide the candidates and the rows, the
context, so they cannot change. The logged propensities are checked against the logging
settings' closed form (``LogsOPEReport.mismatched``: rows logged under other settings).

**Assumptions.** A row's reward depends on its own module and row, not on the modules at the
other rows (a later row leaves out the items of the earlier ones, and a shopper's attention is
shared), and the contexts do not depend on the policy (the rows shape the shoppers' histories,
hence their later candidate modules; over a few days that is small).

**The reward model** of dm, dr, sndr, switch-dr and dr-os is ``ope_reward.estimate_rewards``
(cross-fitted) on context features from the logs: the row (one-hot), the number of
candidates, and the user's activity before the page (``log1p`` of its earlier clicks and of
its earlier pages of modules), next to the action's one-hot.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from moodboard.config import LabelsConfig, Settings
from moodboard.config.overrides import apply_overrides
from moodboard.data import columns as C
from moodboard.errors import ConfigError
from moodboard.evaluate.ope import BanditFeedback, OPEConfig, estimates_table, evaluate_policy
from moodboard.evaluate.ope_reward import RewardModelConfig, estimate_rewards
from moodboard.pipelines.interactions import US, datetime_us, epoch_us
from moodboard.pipelines.labels import head_actions, impression_heads

_log = logging.getLogger(__name__)

#: The rewards a round can count (an action on one of the row's items).
REWARDS = ("click", "save", "add_to_cart", "purchase")
#: The settings a candidate policy may override (and their keys within them).
EVALUABLE = ("surfaces.feed.modules.weights", "surfaces.feed.modules.epsilon")
_FEED = "feed"
_TOLERANCE = 1e-5  # logged propensities carry 6 digits


@dataclass(frozen=True)
class ModulePolicy:
    """The module policy's decision parameters: each kind's weight, and epsilon."""

    weights: Mapping[str, float]
    epsilon: float

    @classmethod
    def of(cls, settings: Settings) -> ModulePolicy:
        """The policy ``settings`` serve (``surfaces.feed.modules``)."""
        m = settings.surfaces.feed.modules
        return cls(dict(m.weights), float(m.epsilon))


def candidate_policy(settings: Settings, overrides: Mapping[str, Any]) -> ModulePolicy:
    """The module policy of ``settings`` with ``overrides`` (``config.overrides``) applied.

    Raises
    ------
    ConfigError
        If an override is not one of ``EVALUABLE`` (or a key of the weights), or its value is
        invalid.
    """
    bad = [k for k in overrides if not any(k == e or k.startswith(e + ".") for e in EVALUABLE)]
    if bad:
        raise ConfigError(
            f"A candidate module policy overrides {list(EVALUABLE)} (or one kind's weight, "
            f"e.g. surfaces.feed.modules.weights.new=1.5) only. Got {bad} instead."
        )
    return ModulePolicy.of(apply_overrides(settings, overrides))


@dataclass(frozen=True, eq=False)
class ModuleRounds:
    """The logged rounds, one per (page, row), in time order.

    Attributes
    ----------
    request_id, user_id
        ``(n,)`` the page's request and user.
    ts_us
        ``(n,)`` when the page was served (microseconds since the epoch).
    row
        ``(n,)`` the policy's row ``j``.
    among
        ``(n, M)`` the candidate module ids in the policy's order, ``""`` past the last.
    shown
        ``(n,)`` the index of the shown module in ``among``.
    pscore
        ``(n,)`` the logged propensity.
    reward
        ``(n,)`` 1.0 when an item of the row got the reward action, else 0.0.
    activity
        ``(n, 2)`` the user's clicks and pages of modules before the page.
    """

    request_id: np.ndarray
    user_id: np.ndarray
    ts_us: np.ndarray
    row: np.ndarray
    among: np.ndarray
    shown: np.ndarray
    pscore: np.ndarray
    reward: np.ndarray
    activity: np.ndarray

    def __len__(self) -> int:
        return len(self.reward)

    @property
    def kinds(self) -> np.ndarray:
        """``(n, M)`` the kind of each candidate (``""`` past the last)."""
        return np.vectorize(lambda m: str(m).split(":", 1)[0], otypes=[object])(self.among)

    @property
    def pages(self) -> int:
        """The pages the rounds come from."""
        return len(set(self.request_id.tolist()))


def module_rounds(
    events: Any,
    reward: str = "click",
    labels: LabelsConfig | None = None,
    since: datetime | None = None,
) -> ModuleRounds:
    """The rounds of the feed's module rows in an event log (see the module docstring).

    Parameters
    ----------
    events
        The event log (an Ibis table of ``EVENT_SCHEMA`` columns).
    reward
        One of ``REWARDS``.
    labels
        The label window; default ``LabelsConfig()``.
    since
        Only the pages served at or after this instant (naive: UTC); None: all.

    Raises
    ------
    ConfigError
        If ``reward`` is unknown, or the log holds fewer than 2 rows of modules.
    """
    if reward not in REWARDS:
        raise ConfigError(f"The reward must be one of {list(REWARDS)}. Got {reward!r} instead.")
    logged = (
        events if since is None else events.filter(epoch_us(events[C.TS]) >= datetime_us(since))
    )
    heads = impression_heads(logged, labels)
    heads = heads.filter((heads[C.SURFACE] == _FEED) & heads[C.PROPS].contains('"module_among"'))
    cols = [C.REQUEST_ID, C.USER_ID, US, C.PROPENSITY, C.PROPS, reward]
    t = heads.order_by([US, C.REQUEST_ID, C.ITEM_ID]).select(*cols).to_pyarrow().to_pylist()
    rounds: dict[tuple[str, int], dict[str, Any]] = {}
    for r in t:
        props = json.loads(r[C.PROPS])
        key = (r[C.REQUEST_ID], int(props["module_row"]))
        if key not in rounds:
            among = list(props["module_among"])
            rounds[key] = r | {"row": key[1], "among": among, "reward": 0.0}
            rounds[key]["shown"] = among.index(props["module"])
        rounds[key]["reward"] = max(rounds[key]["reward"], float(r[reward]))
    rs = list(rounds.values())
    if len(rs) < 2:
        raise ConfigError(
            f"The log holds {len(rs)} rows of modules of the feed (with module_among logged): "
            "serve or simulate the feed with surfaces.feed.modules.enabled=true first."
        )
    width = max(len(r["among"]) for r in rs)

    def col(key: str, dtype: Any = object) -> np.ndarray:
        return np.array([r[key] for r in rs], dtype=dtype)

    users, requests, ts = col(C.USER_ID), col(C.REQUEST_ID), col(US, np.int64)
    out = ModuleRounds(
        request_id=requests,
        user_id=users,
        ts_us=ts,
        row=col("row", np.int64),
        among=np.array([r["among"] + [""] * (width - len(r["among"])) for r in rs], dtype=object),
        shown=col("shown", np.int64),
        pscore=col(C.PROPENSITY, np.float64),
        reward=col("reward", np.float64),
        activity=_activity(events, users, requests, ts),
    )
    _log.info("%d module rows of %d feed pages", len(out), out.pages)
    return out


def _activity(events: Any, users: np.ndarray, requests: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Per round, the user's clicks before ``ts`` (any surface) and its earlier pages among
    ``requests``."""
    acts = head_actions(events)
    clicks = acts.filter(acts[C.TYPE] == "click").select(C.USER_ID, US).to_pyarrow()
    by_user: dict[str, list[int]] = defaultdict(list)
    for u, t in zip(clicks[C.USER_ID].to_pylist(), clicks[US].to_pylist(), strict=True):
        by_user[u].append(t)
    sorted_clicks = {u: np.sort(np.asarray(v)) for u, v in by_user.items()}
    first_seen: dict[str, int] = {}
    pages: dict[str, set[str]] = defaultdict(set)
    out = np.zeros((len(users), 2))
    for j, (u, r, t) in enumerate(zip(users.tolist(), requests.tolist(), ts.tolist(), strict=True)):
        c = sorted_clicks.get(u)
        out[j, 0] = 0 if c is None else np.searchsorted(c, t, side="left")
        if r not in pages[u]:
            first_seen[r] = len(pages[u])
            pages[u].add(r)
        out[j, 1] = first_seen[r]
    return out


def policy_probabilities(rounds: ModuleRounds, policy: ModulePolicy) -> np.ndarray:
    """``(n, M)``: the policy's probability of each candidate at each round's row (0 past the
    last candidate), ``blend.modules.module_propensities`` vectorized over the rounds.

    Raises
    ------
    ConfigError
        If the policy gives no weight to a kind the logs hold.
    """
    kinds = rounds.kinds
    valid = kinds != ""
    missing = sorted(set(kinds[valid].tolist()) - set(policy.weights))
    if missing:
        raise ConfigError(
            f"The policy's weights {dict(policy.weights)} must weigh every logged module kind. "
            f"Got none for {missing}."
        )
    names, inverse = np.unique(kinds.astype(str), return_inverse=True)
    table = np.array([policy.weights.get(k, -np.inf) if k else -np.inf for k in names])
    scores = table[inverse.reshape(kinds.shape)]
    greedy = np.argsort(-scores, axis=1, kind="stable")  # the earlier first on ties
    n, at = valid.sum(axis=1), np.arange(len(rounds))
    p = np.where(valid, policy.epsilon / n[:, None], 0.0)
    p[at, greedy[at, rounds.row]] += 1.0 - policy.epsilon
    return p


def action_ids(rounds: ModuleRounds) -> tuple[list[str], np.ndarray]:
    """The actions' names (kind, ``#k`` for the k-th candidate of a kind) and ``(n, M)`` each
    candidate's action index (-1 past the last candidate)."""
    kinds = rounds.kinds
    valid = kinds != ""
    names = np.empty(kinds.shape, dtype=object)
    for m in range(kinds.shape[1]):
        rank = (kinds[:, :m] == kinds[:, m : m + 1]).sum(axis=1)
        names[:, m] = [
            k if r == 0 else f"{k}#{r + 1}" for k, r in zip(kinds[:, m], rank, strict=True)
        ]
    names[~valid] = ""
    vocab, inverse = np.unique(names.astype(str), return_inverse=True)
    pad = int(vocab[0] == "")  # "" sorts first: the padding maps to -1
    return vocab[pad:].tolist(), inverse.reshape(kinds.shape) - pad


def context_features(rounds: ModuleRounds) -> np.ndarray:
    """The reward model's context: the row (one-hot), the number of candidates and ``log1p``
    of the user's earlier clicks and pages of modules."""
    rows = np.eye(int(rounds.row.max()) + 1)[rounds.row]
    n = (rounds.among != "").sum(axis=1, keepdims=True)
    return np.hstack([rows, n, np.log1p(rounds.activity)])


def module_feedback(
    rounds: ModuleRounds, policy: ModulePolicy, reward_model: RewardModelConfig | None = None
) -> BanditFeedback:
    """The rounds as ``BanditFeedback`` for ``policy`` (one slot), with the cross-fitted
    reward model's estimates (``reward_model``; None: no model, ipw and snipw only).

    Raises
    ------
    ConfigError
        As ``policy_probabilities``.
    """
    pi = policy_probabilities(rounds, policy)
    vocab, ids = action_ids(rounds)
    n, at = len(rounds), np.arange(len(rounds))
    dist = np.zeros((n, len(vocab), 1))
    r, m = np.nonzero(ids >= 0)
    dist[r, ids[r, m], 0] = pi[r, m]
    action = ids[at, rounds.shown]
    q = None
    if reward_model is not None:
        x = context_features(rounds)
        q = estimate_rewards(x, action, rounds.reward.astype(int), np.eye(len(vocab)),
                             config=reward_model)  # fmt: skip
    return BanditFeedback(rounds.reward, action, rounds.pscore, dist, None, q)


def mismatched_propensities(rounds: ModuleRounds, policy: ModulePolicy) -> int:
    """The rounds whose logged propensity is not ``policy``'s closed form (logged under other
    module settings)."""
    p = policy_probabilities(rounds, policy)[np.arange(len(rounds)), rounds.shown]
    return int((np.abs(p - rounds.pscore) > _TOLERANCE).sum())


@dataclass(frozen=True)
class LogsOPEReport:
    """A candidate module policy's value estimated from logged rounds, and its simulated
    on-policy value when one was measured. ``as_dict`` is the ``--json`` object: ``on_policy``
    (None without a simulation), ``estimators`` (``ope.estimates_table``), ``selected``, the
    candidate's overrides (``policy``), ``reward``, the logged ``rounds`` and ``pages``,
    ``logged`` (their mean reward: the logging policy's value), ``mismatched`` (rounds whose
    propensity is not the workspace settings'), and the simulation's rounds and parameters."""

    on_policy: float | None
    estimators: dict[str, dict[str, Any]]
    selected: str
    policy: dict[str, Any]
    reward: str
    rounds: int
    pages: int
    logged: float
    mismatched: int
    on_policy_rounds: int = 0
    simulation: dict[str, Any] = field(default_factory=dict)

    def with_on_policy(
        self, value: float, rounds: int, simulation: Mapping[str, Any] | None = None
    ) -> LogsOPEReport:
        """This report with the on-policy value, each estimator's relative error against it
        and what the simulation was."""
        table = {
            n: e | {"relative_error": abs(e["estimate"] - value) / value if value else None}
            for n, e in self.estimators.items()
        }
        return replace(self, estimators=table, on_policy=value, on_policy_rounds=rounds,
                       simulation=dict(simulation or {}))  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` object (see the class docstring)."""
        return asdict(self)


def evaluate_module_policy(
    rounds: ModuleRounds,
    settings: Settings,
    overrides: Mapping[str, Any],
    reward: str = "click",
    ope: OPEConfig | None = None,
    reward_model: RewardModelConfig | None = None,
) -> LogsOPEReport:
    """Estimate the candidate ``overrides`` of ``settings``' module policy from ``rounds``
    (logged under ``settings``' own policy) with every estimator of ``ope``.

    Raises
    ------
    ConfigError
        If an override is not a module weight or epsilon, or the candidate weighs no kind the
        logs hold.
    """
    candidate = candidate_policy(settings, overrides)
    mismatched = mismatched_propensities(rounds, ModulePolicy.of(settings))
    if mismatched:
        _log.warning(
            "%d of %d logged module rows do not have the workspace settings' propensity",
            mismatched,
            len(rounds),
        )
    data = module_feedback(rounds, candidate, reward_model or RewardModelConfig())
    result = evaluate_policy(data, ope)
    return LogsOPEReport(
        on_policy=None,
        estimators=estimates_table(result),
        selected=result.selected,
        policy=dict(overrides),
        reward=reward,
        rounds=len(rounds),
        pages=rounds.pages,
        logged=float(rounds.reward.mean()),
        mismatched=mismatched,
    )
