"""X API v2 filtered-stream messages → posts (schema v1), and tracked-keyword matching.

Contracts: DESIGN.md "Post", REFERENCE.md "X API v2 filtered stream".
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from musicnft.contract.keywords import KeywordMatcher
from musicnft.contract.schema import POST_COLUMNS, to_json_record
from musicnft.hotpath.decode import ControlMessage, RejectedRecord, decode_line
from musicnft.hotpath.normalize_x import normalize_x_line, normalize_x_message
from musicnft.settings import DEFAULT_KEYWORDS

INGESTED_AT = datetime(2024, 5, 1, 12, 0, 5, 250_000, tzinfo=UTC)
MATCHER = KeywordMatcher(DEFAULT_KEYWORDS)

Message = dict[str, Any]


def full_message() -> Message:
    """A complete filtered-stream message as X sends it with every field the producer asks for."""
    return {
        "data": {
            "id": "1785612345678901234",
            "text": "Minting my new music NFT on OpenSea for 0.05 $ETH #web3 #MusicNFT https://t.co/aBcD1234",
            "created_at": "2024-05-01T11:59:58.000Z",
            "lang": "en",
            "author_id": "1500000000000000001",
            "edit_history_tweet_ids": ["1785612345678901234"],
            "public_metrics": {
                "retweet_count": 2,
                "reply_count": 3,
                "like_count": 4,
                "quote_count": 1,
                "bookmark_count": 0,
                "impression_count": 57,
            },
            "entities": {
                "hashtags": [
                    {"start": 50, "end": 55, "tag": "web3"},
                    {"start": 56, "end": 65, "tag": "MusicNFT"},
                ],
                "cashtags": [{"start": 44, "end": 48, "tag": "ETH"}],
                "mentions": [{"start": 0, "end": 9, "username": "sound_xyz", "id": "42"}],
                "urls": [
                    {
                        "start": 66,
                        "end": 89,
                        "url": "https://t.co/aBcD1234",
                        "expanded_url": "https://opensea.io/collection/first-song",
                        "display_url": "opensea.io/collection/fir…",
                    }
                ],
            },
        },
        "includes": {
            "users": [
                {
                    "id": "999",
                    "username": "someone_else",
                    "public_metrics": {"followers_count": 5},
                },
                {
                    "id": "1500000000000000001",
                    "name": "Ana Beats",
                    "username": "ana_beats",
                    "location": "Berlin, Germany",
                    "verified": True,
                    "public_metrics": {
                        "followers_count": 200,
                        "following_count": 150,
                        "tweet_count": 3021,
                        "listed_count": 4,
                    },
                },
            ]
        },
        "matching_rules": [
            {"id": "1785600000000000001", "tag": "music-nft"},
            {"id": "1785600000000000002", "tag": "eth"},
        ],
    }


def minimal_message(**data: Any) -> Message:
    return {"data": {"id": "1001", "text": "plain words", **data}}


def normalize(message: Message, matcher: KeywordMatcher = MATCHER) -> dict[str, Any]:
    return normalize_x_message(message, matcher, INGESTED_AT)


# ---- a full message ---------------------------------------------------------------------------


def test_full_message_maps_every_post_field() -> None:
    # GIVEN a complete X message whose author is the second of two included users
    # WHEN it is normalized
    post = normalize(full_message())

    # THEN every post column has the value the contract prescribes, and nothing else is present
    assert post == {
        "post_id": "x:1785612345678901234",
        "platform": "x",
        "created_at": datetime(2024, 5, 1, 11, 59, 58, tzinfo=UTC),
        "ingested_at": INGESTED_AT,
        "text": "Minting my new music NFT on OpenSea for 0.05 $ETH #web3 #MusicNFT https://t.co/aBcD1234",
        "lang": "en",
        "author_id": "1500000000000000001",
        "author_handle": "ana_beats",
        "author_followers": 200,
        "author_verified": True,
        "author_location": "Berlin, Germany",
        "is_repost": False,
        "reply_count": 3,
        "repost_count": 2,
        "like_count": 4,
        "quote_count": 1,
        "hashtags": ["web3", "musicnft"],
        "mentions": ["sound_xyz"],
        "urls": ["https://opensea.io/collection/first-song"],
        "matched_keywords": ["music", "nft", "eth", "web3", "opensea"],
        "matching_rules": ["music-nft", "eth"],
        "schema_version": 1,
    }
    assert list(post) == list(POST_COLUMNS)


def test_created_at_is_aware_utc() -> None:
    post = normalize(full_message())

    assert post["created_at"].tzinfo is not None
    assert post["created_at"].utcoffset() == timedelta(0)


def test_created_at_with_an_offset_is_converted_to_utc() -> None:
    post = normalize(minimal_message(created_at="2024-05-01T14:00:00+02:00"))

    assert post["created_at"] == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert post["created_at"].utcoffset() == timedelta(0)


def test_normalize_x_line_accepts_bytes_and_str_alike() -> None:
    line = json.dumps(full_message())

    from_bytes = normalize_x_line(line.encode("utf-8") + b"\r\n", MATCHER, INGESTED_AT)
    from_str = normalize_x_line(line, MATCHER, INGESTED_AT)

    assert from_bytes == from_str == normalize(full_message())


# ---- reposts, replies, quotes -----------------------------------------------------------------


@pytest.mark.parametrize("metric", ["retweet_count", "repost_count"])
def test_retweet_count_and_repost_count_both_map_to_repost_count(metric: str) -> None:
    message = minimal_message(public_metrics={metric: 17, "like_count": 1})

    post = normalize(message)

    assert post["repost_count"] == 17
    assert post["like_count"] == 1


def test_a_retweet_is_a_repost() -> None:
    # GIVEN a retweet: referenced_tweets says "retweeted" and the text starts with "RT @"
    message = minimal_message(
        text="RT @ana_beats: my new music NFT is live",
        referenced_tweets=[{"type": "retweeted", "id": "1785612345678901234"}],
        entities={"mentions": [{"start": 3, "end": 13, "username": "ana_beats"}]},
    )

    post = normalize(message)

    assert post["is_repost"] is True
    assert post["mentions"] == ["ana_beats"]
    assert post["matched_keywords"] == ["music", "nft"]


@pytest.mark.parametrize(
    ("text", "referenced"),
    [
        ("my new music NFT is live", [{"type": "retweeted", "id": "1"}]),
        ("RT @ana_beats: my new music NFT is live", None),
    ],
    ids=["referenced-only", "rt-prefix-only"],
)
def test_either_repost_signal_alone_is_enough(text: str, referenced: list[Any] | None) -> None:
    message = minimal_message(text=text)
    if referenced is not None:
        message["data"]["referenced_tweets"] = referenced

    assert normalize(message)["is_repost"] is True


def test_a_reply_is_not_a_repost_and_keeps_its_mentions() -> None:
    message = minimal_message(
        text="@ana_beats @sound_xyz love this NFT",
        referenced_tweets=[{"type": "replied_to", "id": "1785612345678901234"}],
        entities={
            "mentions": [
                {"start": 0, "end": 10, "username": "ana_beats"},
                {"start": 11, "end": 21, "username": "sound_xyz"},
                {"start": 22, "end": 32, "username": "ana_beats"},
            ]
        },
    )

    post = normalize(message)

    assert post["is_repost"] is False
    assert post["mentions"] == ["ana_beats", "sound_xyz"]
    assert post["matched_keywords"] == ["nft"]


def test_a_quote_is_not_a_repost() -> None:
    message = minimal_message(
        text="This web3 drop is wild https://t.co/q",
        referenced_tweets=[{"type": "quoted", "id": "1785612345678901234"}],
        public_metrics={"retweet_count": 0, "quote_count": 5},
        entities={
            "urls": [
                {
                    "url": "https://t.co/q",
                    "expanded_url": "https://x.com/ana_beats/status/1785612345678901234",
                }
            ]
        },
    )

    post = normalize(message)

    assert post["is_repost"] is False
    assert post["quote_count"] == 5
    assert post["urls"] == ["https://x.com/ana_beats/status/1785612345678901234"]


def test_a_url_without_expanded_url_falls_back_to_its_url() -> None:
    message = minimal_message(entities={"urls": [{"url": "https://t.co/z"}]})

    assert normalize(message)["urls"] == ["https://t.co/z"]


def test_hashtags_are_lower_case_without_hash_and_deduplicated() -> None:
    message = minimal_message(
        entities={
            "hashtags": [{"tag": "NFT"}, {"tag": "nft"}, {"tag": "Web3"}, {"tag": "MusicNFT"}]
        }
    )

    assert normalize(message)["hashtags"] == ["nft", "web3", "musicnft"]


# ---- missing, mistyped and unknown fields -----------------------------------------------------

OPTIONAL_SCALARS = (
    "lang",
    "author_id",
    "author_handle",
    "author_followers",
    "author_verified",
    "author_location",
    "reply_count",
    "repost_count",
    "like_count",
    "quote_count",
)
LIST_FIELDS = ("hashtags", "mentions", "urls", "matched_keywords", "matching_rules")


def test_missing_optional_fields_become_null() -> None:
    # GIVEN a message with nothing but id and text
    post = normalize({"data": {"id": "1001", "text": "plain words"}})

    # THEN it is kept; every optional scalar is null and every list is empty
    assert post["post_id"] == "x:1001"
    assert post["text"] == "plain words"
    assert post["platform"] == "x"
    assert post["is_repost"] is False
    assert {f: post[f] for f in OPTIONAL_SCALARS} == dict.fromkeys(OPTIONAL_SCALARS)
    assert {f: post[f] for f in LIST_FIELDS} == {f: [] for f in LIST_FIELDS}
    assert post["schema_version"] == 1


def test_missing_created_at_falls_back_to_ingested_at() -> None:
    message = full_message()
    del message["data"]["created_at"]

    assert normalize(message)["created_at"] == INGESTED_AT


def _set(path: tuple[str | int, ...], value: Any) -> Callable[[Message], None]:
    def mutate(message: Message) -> None:
        target: Any = message
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


USER = ("includes", "users", 1)
NO_AUTHOR_DETAILS = {
    "author_handle": None,
    "author_followers": None,
    "author_verified": None,
    "author_location": None,
}

WRONG_TYPED: list[tuple[str, Callable[[Message], None], dict[str, Any]]] = [
    (
        "like_count-string",
        _set(("data", "public_metrics", "like_count"), "7"),
        {"like_count": None},
    ),
    (
        "reply_count-negative",
        _set(("data", "public_metrics", "reply_count"), -1),
        {"reply_count": None},
    ),
    (
        "quote_count-float",
        _set(("data", "public_metrics", "quote_count"), 1.5),
        {"quote_count": None},
    ),
    (
        "retweet_count-bool",
        _set(("data", "public_metrics", "retweet_count"), True),
        {"repost_count": None},
    ),
    (
        "public_metrics-string",
        _set(("data", "public_metrics"), "lots"),
        {"reply_count": None, "repost_count": None, "like_count": None, "quote_count": None},
    ),
    (
        "followers-negative",
        _set((*USER, "public_metrics", "followers_count"), -1),
        {"author_followers": None},
    ),
    (
        "followers-string",
        _set((*USER, "public_metrics", "followers_count"), "200"),
        {"author_followers": None},
    ),
    ("verified-string", _set((*USER, "verified"), "yes"), {"author_verified": None}),
    ("verified-int", _set((*USER, "verified"), 1), {"author_verified": None}),
    ("username-int", _set((*USER, "username"), 42), {"author_handle": None}),
    ("location-object", _set((*USER, "location"), {"city": "Berlin"}), {"author_location": None}),
    ("location-empty", _set((*USER, "location"), ""), {"author_location": None}),
    ("lang-int", _set(("data", "lang"), 5), {"lang": None}),
    ("lang-empty", _set(("data", "lang"), ""), {"lang": None}),
    (
        # unusable entities are as good as absent: the tags are read from the text instead
        "entities-string",
        _set(("data", "entities"), "#web3 #MusicNFT"),
        {"hashtags": ["web3", "musicnft"], "mentions": [], "urls": []},
    ),
    (
        "hashtags-not-a-list",
        _set(("data", "entities", "hashtags"), {"tag": "web3"}),
        {"hashtags": []},
    ),
    (
        "hashtag-items-mistyped",
        _set(("data", "entities", "hashtags"), ["web3", {"tag": 7}, {"tag": "Ok"}]),
        {"hashtags": ["ok"]},
    ),
    ("urls-string", _set(("data", "entities", "urls"), "https://t.co"), {"urls": []}),
    ("referenced-string", _set(("data", "referenced_tweets"), "retweeted"), {"is_repost": False}),
    ("matching_rules-string", _set(("matching_rules",), "music-nft"), {"matching_rules": []}),
    ("includes-string", _set(("includes",), "users"), NO_AUTHOR_DETAILS),
    (
        "users-object",
        _set(("includes", "users"), {"id": "1500000000000000001"}),
        NO_AUTHOR_DETAILS,
    ),
    (
        "author_id-list",
        _set(("data", "author_id"), ["1500000000000000001"]),
        {"author_id": None, **NO_AUTHOR_DETAILS},
    ),
    (
        "author_id-bool",
        _set(("data", "author_id"), True),
        {"author_id": None, **NO_AUTHOR_DETAILS},
    ),
    (
        "like_count-beyond-int64",
        _set(("data", "public_metrics", "like_count"), 2**64),
        {"like_count": None},
    ),
    (
        "followers-beyond-int64",
        _set((*USER, "public_metrics", "followers_count"), 10**20),
        {"author_followers": None},
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [pytest.param(m, e, id=i) for i, m, e in WRONG_TYPED],
)
def test_wrong_typed_optional_field_becomes_null_without_rejecting(
    mutate: Callable[[Message], None], expected: dict[str, Any]
) -> None:
    # GIVEN the full message with one optional field of the wrong type
    message = full_message()
    mutate(message)

    # WHEN it is normalized, THEN the post is kept: that field is null (or empty), the rest intact
    post = normalize(message)

    assert {k: post[k] for k in expected} == expected
    untouched = {k: v for k, v in normalize(full_message()).items() if k not in expected}
    assert {k: post[k] for k in untouched} == untouched


def test_integer_author_id_is_accepted_as_a_string() -> None:
    message = full_message()
    message["data"]["author_id"] = 1500000000000000001
    message["includes"]["users"][1]["id"] = 1500000000000000001

    post = normalize(message)

    assert post["author_id"] == "1500000000000000001"
    assert post["author_handle"] == "ana_beats"


def test_unknown_fields_are_ignored() -> None:
    message = full_message()
    message["data"]["possibly_sensitive"] = False
    message["data"]["context_annotations"] = [{"domain": {"id": "1"}}]
    message["data"]["public_metrics"]["bookmark_count"] = "many"
    message["includes"]["tweets"] = [{"id": "1", "text": "other"}]
    message["includes"]["users"][1]["pinned_tweet_id"] = "123"
    message["something_new"] = {"x": [1, 2, 3]}

    assert normalize(message) == normalize(full_message())


def test_author_not_in_includes_leaves_author_fields_null() -> None:
    message = full_message()
    message["data"]["author_id"] = "777"

    post = normalize(message)

    assert post["author_id"] == "777"
    assert post["author_handle"] is None
    assert post["author_followers"] is None
    assert post["author_verified"] is None
    assert post["author_location"] is None


def test_message_without_includes_still_gives_a_post() -> None:
    message = full_message()
    del message["includes"]

    post = normalize(message)

    assert post["author_id"] == "1500000000000000001"
    assert post["author_handle"] is None


def test_message_is_not_modified() -> None:
    message = full_message()
    before = copy.deepcopy(message)

    normalize(message)

    assert message == before


# ---- rejections -------------------------------------------------------------------------------


def _line(message: Any) -> bytes:
    return json.dumps(message).encode("utf-8")


REJECTED_LINES: list[tuple[str, bytes, str]] = [
    ("invalid-utf8", b'{"data": {"id": "1", "text": "caf\xe9 \xff"}}', "utf-8"),
    ("truncated-json", b'{"data": {"id": "1", "text": "trunc', "invalid json"),
    ("empty-line", b"", "invalid json"),
    ("array", _line([{"data": {"id": "1", "text": "t"}}]), "not a json object"),
    ("number", b"42", "not a json object"),
    ("string", _line("a string"), "not a json object"),
    ("null", b"null", "not a json object"),
    ("missing-id", _line({"data": {"text": "music"}}), "post id"),
    ("null-id", _line({"data": {"id": None, "text": "music"}}), "post id"),
    ("id-list", _line({"data": {"id": ["1"], "text": "music"}}), "post id"),
    ("id-dict", _line({"data": {"id": {"id": "1"}, "text": "music"}}), "post id"),
    ("id-bool", _line({"data": {"id": True, "text": "music"}}), "post id"),
    ("id-float", _line({"data": {"id": 1.5, "text": "music"}}), "post id"),
    ("id-empty", _line({"data": {"id": "", "text": "music"}}), "empty post id"),
    ("id-blank", _line({"data": {"id": "   ", "text": "music"}}), "empty post id"),
    ("missing-text", _line({"data": {"id": "1"}}), "text"),
    ("text-number", _line({"data": {"id": "1", "text": 42}}), "text"),
    ("text-null", _line({"data": {"id": "1", "text": None}}), "text"),
    ("text-list", _line({"data": {"id": "1", "text": ["music"]}}), "text"),
    ("data-list", _line({"data": [{"id": "1", "text": "t"}]}), "'data'"),
    ("data-string", _line({"data": "id=1"}), "'data'"),
    ("no-data", _line({"includes": {"users": []}}), "'data'"),
    ("empty-object", b"{}", "'data'"),
    ("errors-empty", _line({"errors": []}), "'data'"),
    (
        "created_at-garbage",
        _line({"data": {"id": "1", "text": "t", "created_at": "yesterday noon"}}),
        "created_at",
    ),
    (
        "created_at-impossible-date",
        _line({"data": {"id": "1", "text": "t", "created_at": "2024-13-45T25:00:00Z"}}),
        "created_at",
    ),
    (
        "created_at-epoch-number",
        _line({"data": {"id": "1", "text": "t", "created_at": 1714564800}}),
        "created_at",
    ),
]


@pytest.mark.parametrize(("raw", "fault"), [pytest.param(r, f, id=i) for i, r, f in REJECTED_LINES])
def test_malformed_line_is_rejected_with_a_reason_naming_the_fault(raw: bytes, fault: str) -> None:
    with pytest.raises(RejectedRecord) as caught:
        normalize_x_line(raw, MATCHER, INGESTED_AT)

    assert fault in caught.value.reason.lower()
    assert str(caught.value) == caught.value.reason


@pytest.mark.parametrize(
    ("raw", "kind"),
    [([1, 2], "list"), (7, "int"), ("s", "str"), (None, "nonetype"), (True, "bool")],
)
def test_decode_line_names_the_json_type_it_got(raw: Any, kind: str) -> None:
    with pytest.raises(RejectedRecord) as caught:
        decode_line(json.dumps(raw).encode())

    assert kind in caught.value.reason.lower()


def test_decode_line_reports_where_the_invalid_utf8_is() -> None:
    with pytest.raises(RejectedRecord) as caught:
        decode_line(b'{"a": "\xc3\x28"}')

    assert "UTF-8" in caught.value.reason
    assert "byte 7" in caught.value.reason


def test_decode_line_returns_the_object() -> None:
    assert decode_line(b'{"data": {"id": "1"}}\r\n') == {"data": {"id": "1"}}
    assert decode_line('{"a": [1, 2]}') == {"a": [1, 2]}


def test_decode_line_rejects_absurd_nesting_instead_of_crashing() -> None:
    with pytest.raises(RejectedRecord):
        decode_line(b"[" * 100_000 + b"]" * 100_000)


def test_rejected_id_reason_names_the_wrong_type() -> None:
    with pytest.raises(RejectedRecord) as caught:
        normalize(minimal_message(id=["1"]))

    assert "list" in caught.value.reason


def test_text_reason_names_the_post() -> None:
    with pytest.raises(RejectedRecord) as caught:
        normalize({"data": {"id": "55", "text": 3}})

    assert "x:55" in caught.value.reason
    assert "int" in caught.value.reason


def test_integer_id_is_accepted() -> None:
    post = normalize({"data": {"id": 123, "text": "music"}})

    assert post["post_id"] == "x:123"


def test_id_whitespace_is_stripped() -> None:
    assert normalize({"data": {"id": " 123 ", "text": "music"}})["post_id"] == "x:123"


def test_operational_disconnect_is_a_control_message_not_a_rejection() -> None:
    # GIVEN X's in-stream error message
    raw = _line(
        {
            "errors": [
                {
                    "title": "operational-disconnect",
                    "disconnect_type": "UpstreamOperationalDisconnect",
                    "detail": "This stream has been disconnected upstream for operational reasons.",
                    "type": "https://api.twitter.com/2/problems/operational-disconnect",
                }
            ]
        }
    )

    # WHEN it is normalized, THEN it is a ControlMessage (not dead-lettered as a bad record)
    with pytest.raises(ControlMessage) as caught:
        normalize_x_line(raw, MATCHER, INGESTED_AT)

    assert not isinstance(caught.value, RejectedRecord)
    assert caught.value.kind == "x_error"
    assert caught.value.detail == "operational-disconnect"


def test_text_with_a_lone_surrogate_never_yields_an_unencodable_post() -> None:
    # GIVEN a line that is valid JSON but whose text escapes a lone UTF-16 surrogate
    raw = b'{"data": {"id": "9", "text": "broken \\ud800 music NFT"}}'

    # WHEN it is normalized
    try:
        post = normalize_x_line(raw, MATCHER, INGESTED_AT)
    except RejectedRecord:
        return  # rejected (dead-lettered): fine

    # THEN a post that comes out can be put on the stream as UTF-8 JSON, as the producer does
    json.dumps(to_json_record(post), ensure_ascii=False).encode("utf-8")


# ---- keyword matching -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("new music out now", ["music"]),
        ("MUSIC", ["music"]),
        ("#NFT", ["nft"]),
        ("buy with $ETH today", ["eth"]),
        ("#web3 is here", ["web3"]),
        ("WEB3", ["web3"]),
        ("listed on OPENSEA", ["opensea"]),
        ("see opensea.io/collection/x", ["opensea"]),
        ("nft-drop tonight", ["nft"]),
        ("(NFT)", ["nft"]),
        ("NFTs are back", []),
        ("#MusicNFT", []),
        ("ethereum", []),
        ("Musical chairs", []),
        ("web30", []),
        ("music_nft", []),
        ("", []),
    ],
)
def test_default_keywords_match_case_insensitive_whole_words(
    text: str, expected: list[str]
) -> None:
    assert MATCHER.match(text) == expected


def test_results_are_in_configuration_order_each_once() -> None:
    text = "OpenSea opensea web3 ETH eth NFT #NFT music MUSIC"

    assert MATCHER.match(text) == ["music", "nft", "eth", "web3", "opensea"]


def test_keywords_are_canonical_lower_case_and_deduplicated() -> None:
    matcher = KeywordMatcher(["NFT", " nft ", "Music"])

    assert matcher.keywords == ("nft", "music")
    assert matcher.match("music NFT") == ["nft", "music"]


def test_keywords_are_configurable() -> None:
    matcher = KeywordMatcher(["sound.xyz", "drop"])

    assert matcher.match("New DROP on Sound.XYZ tonight") == ["sound.xyz", "drop"]
    assert matcher.match("soundxxyz dropped a music NFT") == []
    assert matcher.match("#drop") == ["drop"]


def test_an_empty_keyword_list_is_refused() -> None:
    with pytest.raises(ValueError):
        KeywordMatcher([])


@pytest.mark.parametrize(
    ("terms", "expected"),
    [
        (["NFT"], ["nft"]),
        (["#web3", "$ETH"], ["eth", "web3"]),
        (["MusicNFT"], []),
        (["ethereum"], []),
    ],
)
def test_hashtag_and_cashtag_entities_count_via_extra_terms(
    terms: list[str], expected: list[str]
) -> None:
    assert MATCHER.match("nothing tracked in this text", terms) == expected


def test_normalize_matches_hashtag_and_cashtag_entities() -> None:
    # GIVEN text without any keyword but entities that are keywords
    message = minimal_message(
        text="gm frens",
        entities={"hashtags": [{"tag": "Web3"}], "cashtags": [{"tag": "ETH"}]},
    )

    post = normalize(message)

    assert post["matched_keywords"] == ["eth", "web3"]
    assert post["hashtags"] == ["web3"]


def test_normalize_uses_the_matcher_it_is_given() -> None:
    message = minimal_message(text="New drop on sound.xyz: music NFT")

    post = normalize(message, KeywordMatcher(["sound.xyz", "drop"]))

    assert post["matched_keywords"] == ["sound.xyz", "drop"]


def test_text_longer_than_xs_limit_is_rejected_before_it_can_stall_vader() -> None:
    from musicnft.contract.schema import MAX_TEXT_CHARS

    matcher = KeywordMatcher(["music"])
    ok = {"data": {"id": "1", "text": "m" * MAX_TEXT_CHARS}}
    assert normalize_x_message(ok, matcher, datetime(2021, 12, 1, tzinfo=UTC))["text"]
    huge = {"data": {"id": "2", "text": "music " * 300_000}}
    with pytest.raises(RejectedRecord, match=r"too long \(1800000 chars > 25000\)"):
        normalize_x_message(huge, matcher, datetime(2021, 12, 1, tzinfo=UTC))


# ---- entities absent: hashtags, cashtags and mentions from the text (issue #12, item 5) ---------


def test_without_entities_hashtags_cashtags_and_mentions_come_from_the_text() -> None:
    # GIVEN a payload without `entities` (an archive, another client), tags only in the text
    message = minimal_message(
        text="gm @Sound_XYZ! New #NFT drop #MusicNFT #nft ＃音楽 $ETH, ask @sound_xyz #web3",
    )

    post = normalize(message)

    # THEN they are read from the text the way the entities path stores them
    assert post["hashtags"] == ["nft", "musicnft", "音楽", "web3"]
    assert post["mentions"] == ["Sound_XYZ", "sound_xyz"]
    # AND cashtags count for matching (as entities.cashtags do) without joining the hashtags
    assert post["matched_keywords"] == ["nft", "eth", "web3"]


@pytest.mark.parametrize(
    ("text", "hashtags", "mentions"),
    [
        ("a#b c#NFT", [], []),  # inside a word
        ("&#39;s great", [], []),  # an HTML entity, not a tag
        ("#123 #1_2 #2024drop", ["2024drop"], []),  # all digits is not a tag
        ("#x## #café_1 #über", ["café_1", "über"], []),
        ("see https://example.com/#anchor", [], []),  # inside a URL
        ("mail me@example.com or @ok_1: @abcdefghijklmnop", [], ["ok_1"]),  # e-mail; 16 chars
        ("@a@b x@y @_", [], ["_"]),
        ("RT @beats: #NFT", ["nft"], ["beats"]),
    ],
)
def test_text_extraction_follows_xs_rules(
    text: str, hashtags: list[str], mentions: list[str]
) -> None:
    post = normalize(minimal_message(text=text))

    assert (post["hashtags"], post["mentions"]) == (hashtags, mentions)


@pytest.mark.parametrize(
    ("text", "cashtags"),
    [("$ETH and $eth.x", ["ETH", "eth.x"]), ("a$BTC $TOOLONGX $$SOL $5", [])],
)
def test_cashtags_from_the_text_follow_xs_rules(text: str, cashtags: list[str]) -> None:
    from musicnft.hotpath.decode import text_cashtags

    assert text_cashtags(text) == cashtags


def test_entities_when_present_are_authoritative_even_when_empty() -> None:
    # GIVEN X's entities, which found no hashtag, and a text that looks like it has one
    post = normalize(minimal_message(text="#NFT @beats", entities={"urls": []}))

    # THEN the text is not second-guessed
    assert post["hashtags"] == [] and post["mentions"] == []
    assert post["matched_keywords"] == ["nft"]  # the word itself still matches
