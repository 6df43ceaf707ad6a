"""The learned recommenders' configs (their sections under ``[surfaces.feed]``)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TwoTowerConfig(_Frozen):
    """The ``two_tower`` retrieval model: its towers, negatives and training loop.

    The item tower embeds an item from its id (an out-of-vocabulary row for items never
    engaged with, and for ``id_dropout`` of the training ids) plus its content (text and image
    vectors, categorical attributes); the user tower pools the item-tower outputs of the user's
    last ``max_history`` items (``pooling``) and adds a user id embedding (users unseen in
    training hash into ``user_buckets`` shared rows, which ``user_dropout`` trains). Training
    is next-item prediction with in-batch negatives corrected by the log of each item's
    sampling frequency (``logq``) plus ``random_negatives`` uniform items per batch; logits are
    cosines divided by ``temperature``.
    """

    dim: int = Field(default=64, ge=2)
    hidden: int = Field(default=128, ge=2)
    pooling: Literal["mean", "attention"] = "attention"
    max_history: int = Field(default=30, ge=1)
    user_buckets: int = Field(default=64, ge=1)
    user_dropout: float = Field(default=0.5, ge=0, le=1)
    id_dropout: float = Field(default=0.5, ge=0, le=1)
    min_item_count: int = Field(default=1, ge=1)
    temperature: float = Field(default=0.1, gt=0)
    random_negatives: int = Field(default=128, ge=0)
    logq: bool = True
    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=256, ge=2)
    lr: float = Field(default=3e-3, gt=0)
    weight_decay: float = Field(default=1e-5, ge=0)
    train_threads: int = Field(default=1, ge=1)
    seed: int = 0


class SequenceConfig(_Frozen):
    """Parameters of the ``sequence`` source.

    Attributes
    ----------
    dim, n_layers, n_heads, inner_mult, dropout
        Item vector size, attention blocks, heads, feed-forward width (x ``dim``), dropout.
    max_len
        Longest history read (the last ``max_len`` items).
    attributes, max_attributes
        Add the mean of learned attribute vectors (``item_features["attributes"]``) to each
        item's vector, keeping at most ``max_attributes`` per item. None: when the data has
        attributes; True: required (an error without them); False: never.
    lr, weight_decay, batch_size, label_smoothing
        AdamW and the cross-entropy loss; a batch is ``batch_size`` user sequences.
    negatives, negative_power
        0: full softmax over all items; k > 0: sampled softmax against k negatives shared by
        the batch (much cheaper on large catalogs), drawn with probability proportional to
        (training count + 1) ** negative_power (0: uniform), with the logQ correction.
    epochs, max_minutes
        Training stops after ``epochs`` or ``max_minutes`` of training, whichever comes first.
    eval_every, patience, valid_users
        Validation NDCG@10 is measured every ``eval_every`` epochs on at most ``valid_users``
        users; the best state is kept and training stops after ``patience`` evaluations
        without improvement. Without explicit validation data, the last item of
        ``valid_users`` random users is held out of training for this (0: no early stopping).
    restarts, lr_decay
        At a plateau (``patience`` evaluations without improvement) go back to the best state
        and multiply the learning rate by ``lr_decay``, at most ``restarts`` times, then stop.
    contrastive, temperature
        Weight of a contrastive loss between two dropout views of each user's state (cosine
        InfoNCE with in-batch negatives at ``temperature``); 0: off.
    threads
        torch CPU threads while fitting and scoring.
    seed
        Seeds initialization, batching and the validation sample.
    """

    dim: int = Field(default=64, ge=8)
    n_layers: int = Field(default=2, ge=1)
    n_heads: int = Field(default=2, ge=1)
    inner_mult: int = Field(default=4, ge=1)
    dropout: float = Field(default=0.5, ge=0.0, lt=1.0)
    max_len: int = Field(default=50, ge=2)
    attributes: bool | None = None
    max_attributes: int = Field(default=16, ge=1)
    lr: float = Field(default=1e-3, gt=0.0)
    weight_decay: float = Field(default=0.1, ge=0.0)
    batch_size: int = Field(default=256, ge=1)
    label_smoothing: float = Field(default=0.0, ge=0.0, lt=1.0)
    negatives: int = Field(default=1024, ge=0)
    negative_power: float = Field(default=0.75, ge=0.0, le=1.0)
    epochs: int = Field(default=200, ge=1)
    max_minutes: float = Field(default=12.0, gt=0.0)
    eval_every: int = Field(default=2, ge=1)
    patience: int = Field(default=4, ge=1)
    restarts: int = Field(default=0, ge=0)
    lr_decay: float = Field(default=0.3, gt=0.0, le=1.0)
    contrastive: float = Field(default=0.0, ge=0.0)
    temperature: float = Field(default=0.2, gt=0.0)
    valid_users: int = Field(default=5000, ge=0)
    threads: int = Field(default=1, ge=1)
    seed: int = 0

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> Self:
        if self.dim % self.n_heads:
            raise ValueError(
                f"The 'n_heads' parameter of SequenceConfig must divide dim={self.dim}. "
                f"Got {self.n_heads} instead."
            )
        return self


class WalksConfig(_Frozen):
    """Parameters of ``graph/walks`` (defaults tuned on the Amazon validation targets).

    ``n_steps`` is the step budget of one query (a user or an item), shared by its query items
    in proportion to their weights; ``n_walkers`` walkers split it, each walking
    ``n_steps // n_walkers`` steps. ``time_budget_ms`` stops the walkers of a ``related`` call
    or of a ``score`` batch early (then the answer depends on the machine's speed).
    ``popularity_penalty`` divides scores by ``popularity ** penalty`` (RP3beta's beta).
    """

    method: Literal["exact", "walk"] = "exact"
    n_steps: int = Field(default=20_000, ge=1)
    n_walkers: int = Field(default=1_000, ge=1)
    restart: float = Field(default=0.5, gt=0, le=1)
    time_budget_ms: float | None = Field(default=None, gt=0)
    exact_steps: int = Field(default=2, ge=1, le=10)
    board_size: int | None = Field(default=5, ge=1)
    max_board_degree: int | None = Field(default=500, ge=1)
    max_item_degree: int | None = Field(default=2_000, ge=1)
    n_query_items: int = Field(default=10, ge=1)
    recency_decay: float = Field(default=0.3, gt=0, le=1)
    boost: bool = True
    popularity_penalty: float = Field(default=0.0, ge=0, le=1)
    batch_size: int = Field(default=512, ge=1)
    seed: int = Field(default=0, ge=0)


class InterestsConfig(_Frozen):
    """Parameters of ``user_interests`` (defaults tuned on the Amazon validation targets).

    ``weighted_medoid`` picks the member closest to the others weighted by recency, so a
    cluster's query leans to what the user engaged with last (PinnerSage: unweighted).
    """

    embedding_feature: str = "embeddings"
    dim: int = Field(default=256, ge=2)
    window: int = Field(default=5, ge=1)
    eigen_power: float = Field(default=1.0, ge=0, le=1)
    max_history: int = Field(default=50, ge=1)
    max_interests: int = Field(default=5, ge=1)
    clustering: Literal["ward", "kmeans"] = "ward"
    distance_threshold: float = Field(default=1.0, gt=0)
    recency_decay: float = Field(default=0.3, gt=0, le=1)
    weighted_medoid: bool = True
    n_candidates: int = Field(default=200, ge=1)
    batch_size: int = Field(default=512, ge=1)
    seed: int = Field(default=0, ge=0)
