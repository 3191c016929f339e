"""The entity matching rule of issue 18 on tricky text, the shipped file, and the hot path's use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from musicnft.hotpath import entities as ent
from musicnft.hotpath.consumer import enrich_rows
from musicnft.hotpath.entities import EntitiesFileError, load_catalog, parse_catalog
from musicnft.settings import ConfigError, Settings

CATALOG = load_catalog()
REQUIRED_IDS = (
    "bts",
    "bayc",
    "kingship",
    "umg",
    "sound-xyz",
    "royal",
    "catalog",
    "audius",
    "opensea",
    "snoop-dogg",
)


def match(text: str, **post: object) -> list[str]:
    return CATALOG.post_entities({"text": text, **post})


def test_shipped_file_lists_the_required_entities_and_aliases() -> None:
    assert set(REQUIRED_IDS) <= set(CATALOG.ids)
    aliases = {e.id: {a.lower() for a in e.aliases} for e in CATALOG.entities}
    assert "bts" in aliases["bts"]
    assert {"bayc", "bored ape yacht club"} <= aliases["bayc"]
    assert "kingship" in aliases["kingship"]
    assert {"umg", "universal music group"} <= aliases["umg"]
    assert "sound.xyz" in aliases["sound-xyz"]
    assert "opensea" in aliases["opensea"]
    for e in CATALOG.entities:
        assert e.kind in ent.KINDS
        assert e.note, f"{e.id} documents its alias choice"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("BTS's new single is out", ["bts"]),  # possessive
        ("bts and Bts and BTS", ["bts"]),  # case, once
        ("that was subtle", []),  # 'bts' inside a word
        ("BTSX drop / 2BTS / abts", []),  # letter or digit beside it
        ("BTS_twt posted", ["bts"]),  # '_' is neither letter nor digit
        ("(BTS), [BAYC]!", ["bts", "bayc"]),
        ("love the Bored Ape Yacht Club", ["bayc"]),
        ("Bored Ape\nYacht   Club floor", ["bayc"]),  # whitespace inside a multi-word alias
        ("#BoredApeYachtClub to the moon", ["bayc"]),  # hashtag = alias without spaces
        ("$BAYC pumping", ["bayc"]),  # cashtag
        ("https://opensea.io/collection/boredapeyachtclub", ["opensea"]),  # URL: alias by '/' '.'
        ("minted on https://sound.xyz/artist/drop", ["sound-xyz"]),
        ("what a great sound", []),  # Sound needs its qualifier
        ("the royal family; royalty payments", []),  # Royal needs its qualifier
        ("royal.io drops a song", ["royal"]),
        ("my back catalog", []),  # Catalog needs its qualifier
        ("Catalog.works has a new record", ["catalog"]),
        ("Universal Music Group signs Kingship", ["kingship", "umg"]),
        ("universal truths", []),
        ("UMG's deal", ["umg"]),
        ("Snoop Dogg drops music NFTs", ["snoop-dogg"]),
        ("don't snoop around", []),
        ("open sea views", []),
        ("OPENSEA listing", ["opensea"]),
        ("방탄소년단 콘서트", ["bts"]),  # non-Latin alias
        ("방탄소년단의", []),  # a Hangul letter right after: not a whole alias
        ("listen on Audius", ["audius"]),
    ],
)
def test_matching_rule_on_tricky_text(text: str, expected: list[str]) -> None:
    assert match(text) == expected


def test_stored_hashtags_and_mentions_count() -> None:
    assert match("gm", hashtags=["boredapeyachtclub"]) == ["bayc"]
    assert match("gm", hashtags=["soundxyz"]) == ["sound-xyz"]
    assert match("gm", mentions=["boredapeyc"]) == ["bayc"]  # handles compare without case
    assert match("gm", mentions=["someone"]) == []
    assert match("thanks @OpenSea") == ["opensea"]  # a mention in the text
    assert match("gm @BoredApeYC") == ["bayc"]  # a handle that is no alias, in the text
    bsky = parse_catalog(
        {"entities": [{"id": "a", "name": "A", "kind": "artist", "handles": ["a.bsky.social"]}]}
    )
    assert bsky.post_entities({"text": "hi @A.bsky.social!"}) == ["a"]  # Bluesky handle
    assert bsky.post_entities({"text": "hi @b.bsky.social"}) == []
    # a hashtag that only contains an alias is not the alias
    assert match("gm", hashtags=["btsarmy"]) == []


def test_results_in_file_order_each_once() -> None:
    text = "OpenSea lists BAYC; BTS fans on opensea and #BTS"
    assert match(text) == ["bts", "bayc", "opensea"]


def test_custom_file_through_settings(tmp_path: Path) -> None:
    f = tmp_path / "entities.json"
    f.write_text(
        json.dumps(
            {
                "entities": [
                    {"id": "acme", "name": "Acme", "kind": "label", "aliases": ["Acme Records"]}
                ]
            }
        )
    )
    settings = Settings.from_env({"MUSICNFT_ENTITIES_FILE": str(f)})
    assert settings.entities_file == f
    catalog = load_catalog(settings.entities_file)
    assert catalog.ids == ["acme"]
    assert catalog.post_entities({"text": "Acme Records x BTS"}) == ["acme"]
    assert Settings.from_env({}).entities_file is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"entities": [{"id": "Bad Id", "name": "x", "kind": "artist", "aliases": ["x"]}]}, "id"),
        ({"entities": [{"id": "a", "name": "A", "kind": "band", "aliases": ["x"]}]}, "kind"),
        ({"entities": [{"id": "a", "name": "A", "kind": "artist"}]}, "could never match"),
        ({"entities": [{"id": "a", "name": "A", "kind": "artist", "aliases": "x"}]}, "aliases"),
        ({"nothing": []}, "'entities' list"),
    ],
)
def test_bad_entities_file_names_the_fault(data: object, message: str) -> None:
    with pytest.raises(EntitiesFileError, match=message):
        parse_catalog(data, "test.json")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(EntitiesFileError, match="cannot read"):
        load_catalog(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(EntitiesFileError, match="not valid JSON"):
        load_catalog(bad)


def test_webhook_url_error_never_shows_the_url() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"MUSICNFT_ALERT_WEBHOOK_URL": "hooks.example/T000/SECRET"})
    assert "SECRET" not in str(info.value)
    assert "SECRET" not in repr(Settings(alert_webhook_url="https://h/SECRET"))


def test_hot_path_rows_carry_entities() -> None:
    post = {
        "post_id": "x:1",
        "platform": "x",
        "created_at": "2021-12-01T00:00:00Z",
        "ingested_at": "2021-12-01T00:00:01Z",
        "text": "Kingship x UMG on OpenSea",
        "hashtags": ["bts"],
        "schema_version": 1,
    }
    ent.use_catalog(CATALOG)
    try:
        (row,) = enrich_rows([post])
        (plain,) = enrich_rows([post | {"text": "nothing here", "hashtags": []}])
    finally:
        ent.use_catalog(None)
    assert row["entities"] == ["bts", "kingship", "umg", "opensea"]
    assert plain["entities"] == []
