"""Entity matching looks for every entity's needles in one pass over the text (then runs only the
patterns of the entities whose needles occur). The entities found must be exactly those of the
plain rule: each entity's pattern, where one of its needles occurs, in file order."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from musicnft.contract.keywords import KeywordMatcher
from musicnft.hotpath.entities import EntityCatalog, active_catalog
from musicnft.hotpath.normalize_x import normalize_x_line
from musicnft.settings import Settings
from tests.support import hostile


def plain_match(catalog: EntityCatalog, post: dict) -> list[str]:
    """The rule written out per entity (what match() did before it shared one needle pass)."""
    reference = EntityCatalog(catalog.entities)
    text = post.get("text") if isinstance(post.get("text"), str) else ""
    found = set(reference.match(None, _tags(reference, post, text), _mentions(post, text)))
    lowered = text.lower()
    for entity_id, pattern, needles in reference._patterns:
        if pattern is not None and any(n in lowered for n in needles) and pattern.search(text):
            found.add(entity_id)
    return [e.id for e in catalog.entities if e.id in found]


def _tags(catalog: EntityCatalog, post: dict, text: str) -> list[str]:
    from musicnft.hotpath.entities import _TEXT_TAG

    tags = [*(post.get("hashtags") or [])]
    if "#" in text or "$" in text:
        tags += _TEXT_TAG.findall(text)
    return tags


def _mentions(post: dict, text: str) -> list[str]:
    from musicnft.hotpath.entities import _TEXT_MENTION

    mentions = [*(post.get("mentions") or [])]
    if "@" in text:
        for name in _TEXT_MENTION.findall(text):
            mentions += [name, name.partition(".")[0]]
    return mentions


TEXTS = [
    "Bored Ape Yacht Club x BTS on OpenSea.io and sound.xyz",
    "catalog.works drop, royal.io too; Royal alone is not one",
    "방탄소년단 new #NFT music",
    "bored\\nape yacht\\tclub",
    "subtle BTSX 2BTS bayc! (BAYC) #BAYC $BAYC @opensea",
    "",
    "UMG universal music group audius snoop dogg kingship cozomo bangtan",
]


def test_one_needle_pass_finds_exactly_the_entities_of_the_plain_rule() -> None:
    catalog = active_catalog()
    matcher = KeywordMatcher(Settings().keywords)
    posts = []
    for line in hostile.mixed(hostile.sample_lines(3000)):
        try:
            posts.append(normalize_x_line(line, matcher, datetime.now(UTC)))
        except Exception:  # not posts: the producer rejects or skips them
            continue
    posts += [{"text": json.loads(f'"{t}"'), "hashtags": [], "mentions": []} for t in TEXTS]
    assert len(posts) > 2500
    found_any = 0
    for post in posts:
        expected = plain_match(catalog, post)
        assert catalog.post_entities(post) == expected, post.get("text")
        found_any += bool(expected)
    assert found_any > 100  # the sample names entities often enough for this to mean something
