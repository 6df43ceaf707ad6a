"""``/search?user=`` with ``surfaces.search.ranker = "rank/lambdamart_personal"``: a shopper
with a built history gets the page moved toward their tastes; anonymous gets the plain one."""

from __future__ import annotations

import numpy as np
from serving import api_client, serve_settings

from moodboard.ingest import Workspace
from moodboard.serve.registry import Engine


def test_served_search_is_personalized_for_a_known_shopper(served_ws: Workspace) -> None:
    settings = serve_settings()
    search = settings.surfaces.search.model_copy(update={"ranker": "rank/lambdamart_personal"})
    settings.surfaces = settings.surfaces.model_copy(update={"search": search})
    engine = Engine.load(served_ws, settings=settings)
    gender = engine.catalog.attribute("gender")
    # the shopper whose history leans most to one gender
    best, lean = None, 0.0
    for user in engine.histories.users():
        g = gender[engine.histories(user)]
        if len(g) >= 5:
            for who in ("Men", "Women"):
                if np.mean(g == who) > lean:
                    best, lean = (user, who), float(np.mean(g == who))
    assert best is not None and lean >= 0.8
    user, who = best
    ids = engine.catalog.ids
    with api_client(served_ws.root, settings) as client:

        def share(**params: str) -> tuple[float, list[str]]:
            r = client.get("/search", params={"q": "watch", "k": "10", "explain": "1", **params})
            assert r.status_code == 200, r.text
            page = r.json()
            stages = {s["name"]: s["component"] for s in page["explain"]["stages"]}
            assert stages["rank"] == "rank/lambdamart_personal"
            items = [it["id"] for it in page["items"]]
            return float(np.mean(gender[ids.indices(items)] == who)), items

        mine, mine_items = share(user=user)
        plain, plain_items = share()
    assert mine > plain, (who, mine, plain)
    assert mine_items != plain_items
