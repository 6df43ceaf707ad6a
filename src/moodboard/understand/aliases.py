"""Built-in words shoppers use for article types and usages, beside the catalog's own values:
``ARTICLE_ALIASES`` (``"sneakers"`` -> casual or sports shoes, ``"pants"`` -> trousers) and
``USAGES`` (``"formal"``, ``"sporty"``, ``"ethnic wear"``). ``lexicon.Lexicon`` keeps those whose
values the catalog has.
"""

from __future__ import annotations

#: Built-in article type aliases: phrase -> the normalized catalog values it names, in order of
#: preference (used only for the values the catalog has).
ARTICLE_ALIASES: dict[str, str | tuple[str, ...]] = {
    **dict.fromkeys(("t shirt", "t shirts", "tee", "tees", "tee shirt", "tee shirts", "tshirt",
                     "jersey", "jerseys"), "tshirts"),
    **dict.fromkeys(("sneaker", "sneakers", "trainer", "trainers"),
                    ("casual shoes", "sports shoes")),
    **dict.fromkeys(("loafers", "loafer"), "casual shoes"),
    **dict.fromkeys(("running shoes", "running shoe", "sport shoes"), "sports shoes"),
    **dict.fromkeys(("dress shoes", "dress shoe", "oxfords"), "formal shoes"),
    **dict.fromkeys(("perfume", "perfumes", "body mist"), "perfume and body mist"),
    **dict.fromkeys(("deo", "deos", "deodorants"), "deodorant"),
    **dict.fromkeys(("sunglass", "shades", "goggles"), "sunglasses"),
    **dict.fromkeys(("purse", "purses", "hand bag", "hand bags", "handbag"), "handbags"),
    **dict.fromkeys(("duffle bag", "duffle bags", "duffle"), "duffel bag"),
    **dict.fromkeys(("hoodie", "hoodies", "sweat shirt", "sweat shirts"), "sweatshirts"),
    **dict.fromkeys(("pullover", "pullovers", "jumper", "jumpers", "cardigan"), "sweaters"),
    **dict.fromkeys(("necklace", "necklaces", "chain", "chains"), "necklace and chains"),
    **dict.fromkeys(("stilettos", "stiletto", "pumps", "wedges"), "heels"),
    **dict.fromkeys(("denim", "denims"), "jeans"),
    **dict.fromkeys(("flipflops", "flipflop", "flip flop", "slipper", "slippers", "chappal",
                     "chappals"), "flip flops"),
    **dict.fromkeys(("pants", "pant", "trouser"), "trousers"),
    **dict.fromkeys(("joggers", "jogger", "track pant", "trackpants"), "track pants"),
    **dict.fromkeys(("blouse", "blouses"), "tops"),
    **dict.fromkeys(("frock", "frocks", "gown", "gowns"), "dresses"),
    **dict.fromkeys(("vest", "vests"), "innerwear vests"),
    **dict.fromkeys(("underwear", "innerwear"), ("briefs", "trunk", "boxers", "innerwear vests",
                                                 "bra")),
    **dict.fromkeys(("rucksack", "rucksacks"), ("backpacks", "rucksacks")),
    **dict.fromkeys(("tracksuit",), "tracksuits"),
    "saree": "sarees", "sari": "sarees", "kurti": "kurtis",
}  # fmt: skip

#: Usage words (``usage`` attribute: casual, formal, sports, ethnic) -> the value they name.
USAGES: dict[str, str] = {
    "casual": "casual", "casuals": "casual", "casual wear": "casual",
    **dict.fromkeys(("formal", "formals", "formal wear", "office", "office wear"), "formal"),
    **dict.fromkeys(("sports", "sport", "sporty", "sportswear", "gym", "athletic"), "sports"),
    **dict.fromkeys(("ethnic", "ethnic wear", "traditional"), "ethnic"),
    **dict.fromkeys(("party", "party wear", "partywear"), "party"),
    "smart casual": "smart casual", "travel": "travel",
}  # fmt: skip
