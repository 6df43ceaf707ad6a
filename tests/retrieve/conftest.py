"""What the recommender tests share: leave-one-out metrics measured like the evaluation runner."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from moodboard.build.fusion import exclude_histories, rank_metrics
from moodboard.evaluate.rec_protocol import target_ranks
from moodboard.retrieve import CandidateSource

LooMetrics = Callable[[CandidateSource, list[np.ndarray]], tuple[float, float]]


@pytest.fixture(scope="session")
def loo_hr_ndcg() -> LooMetrics:
    """HR@10 and NDCG@10 of each sequence's last item given the rest, history excluded (the
    S3-Rec protocol, with ``moodboard evaluate recs``'s own helpers). Item 0 of the Amazon
    files is not an item and is never ranked."""

    def measure(model: CandidateSource, sequences: list[np.ndarray]) -> tuple[float, float]:
        hr, ndcg = [], []
        for lo in range(0, len(sequences), 4096):
            part = sequences[lo : lo + 4096]
            hist = [s[:-1] for s in part]
            scores = exclude_histories(np.array(model.score(hist), dtype=np.float32), hist)
            scores[:, 0] = -np.inf
            m = rank_metrics(target_ranks(scores, [s[-1:] for s in part]), (10,))
            hr.append(m["hr@10"])
            ndcg.append(m["ndcg@10"])
        return float(np.concatenate(hr).mean()), float(np.concatenate(ndcg).mean())

    return measure
