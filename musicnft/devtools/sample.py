"""A deterministic, seeded stand-in for the X API v2 filtered stream about music NFTs.

Why this exists: the original project listened to the live X stream in late 2021. That stream is
gone (and paid), yet the pipeline, its tests, the demo and the benchmarks all need input that looks
and misbehaves like it: realistic text in several languages with correct entity offsets, authors
whose follower counts are heavy-tailed, a daily rhythm with bursts around drops, X's habit of
re-delivering posts, keep-alive blank lines and the occasional broken line. Everything here is
derived from one seed, so the same arguments always give the same bytes; lines are produced one at
a time so millions can be streamed for benchmarks without holding them in memory.

Only the standard library is used, so the generator runs anywhere the core package runs.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import random
import re
import unicodedata
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from string import Formatter
from typing import Any, BinaryIO

DEFAULT_SEED: int = 2021
DEFAULT_START: datetime = datetime(2021, 12, 1, tzinfo=UTC)
SAMPLE_PATH: Path = Path(__file__).parent / "data" / "sample.jsonl.gz"
SAMPLE_LINES: int = 20_000

MALFORMED_KINDS: tuple[str, ...] = (
    "truncated_json",
    "missing_id",
    "wrong_types",
    "huge_text",
    "invalid_utf8",
    "not_object",
)
"""The kinds of broken line the generator emits, in the order used for `SampleStats.malformed`."""

MAX_WELL_FORMED_BYTES: int = 1_048_576
"""Lines at or above this size are the `huge_text` kind (Kinesis' 1 MiB record limit)."""


@dataclass
class SampleStats:
    """What a generator emitted, counted as it went (no re-parse needed)."""

    lines: int = 0  # total lines written (every line counts, incl. keep-alive blank lines)
    posts: int = 0  # well-formed post messages, including duplicate re-deliveries
    unique_posts: int = 0  # distinct post ids among well-formed posts
    duplicates: int = 0  # re-delivered well-formed posts (posts - unique_posts)
    keep_alives: int = 0  # blank lines
    malformed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MALFORMED_KINDS, 0))


# --------------------------------------------------------------------------------------------
# Tunables. Shares are per line; the generator draws against them with its own seeded RNG.
# --------------------------------------------------------------------------------------------

_MALFORMED_EVERY = 100  # one malformed line per block of this many lines (~1%), at a random offset
_KEEP_ALIVE_SHARE = 0.005
_DUPLICATE_SHARE = 0.02
_DEDUP_WINDOW = 200  # re-deliveries repeat one of the last this-many well-formed lines
_OUT_OF_ORDER_SHARE = 0.015  # posts whose created_at lags the clock by a few seconds
_REPOST_SHARE = 0.20
_REPLY_SHARE = 0.10
_QUOTE_SHARE = 0.05
_UND_SHARE = 0.02  # emoji/hashtag-only posts X tags as lang "und"
_AUTHORS = 3000
_HUGE_TEXT_CHARS = 1_500_000

# Daily rhythm: rate(t) = base * (1 + A * cos(2π (hour - peak) / 24)); peak is US midday/EU evening.
_DAY_AMPLITUDE = 0.5
_DAY_PEAK_HOUR_UTC = 19.0
# Drops: at each UTC hour boundary a burst starts with probability _BURST_P * f(hour) / (1 + A),
# so drops favour busy hours like real scheduled releases; during a burst the rate is ×5-10.
_BURST_P = 0.06
_BURST_MINUTES = (10.0, 30.0)
_BURST_FACTOR = (5.0, 10.0)
# Mean extra volume bursts add, so the long-run average stays at `posts_per_hour`:
# E_h[p(h) f(h)] * E[duration in hours] * (E[factor] - 1), with E_h[f^2] = 1 + A²/2.
_BURST_GAIN = (
    _BURST_P
    / (1 + _DAY_AMPLITUDE)
    * (1 + _DAY_AMPLITUDE**2 / 2)
    * (sum(_BURST_MINUTES) / 2 / 60)
    * (sum(_BURST_FACTOR) / 2 - 1)
)

_TWITTER_EPOCH_MS = 1_288_834_974_657
_ID_SCRAMBLE = 2_654_435_761  # odd, so counter*_ID_SCRAMBLE is a bijection on the low 22 bits
_LOW22 = (1 << 22) - 1

_RULE_TAGS: tuple[str, ...] = ("music-nft", "nft-general", "eth", "web3", "opensea")
_KEYWORD_RE = re.compile(r"(?<!\w)[#$]?(music|nft|eth|web3|opensea)(?!\w)", re.IGNORECASE)
# One pass finds every entity; each alternative mirrors X's own extraction closely enough for
# the text this module writes (ASCII handles and cashtags, Unicode hashtags, t.co links only).
_ENTITY_RE = re.compile(
    r"(?P<url>https://t\.co/[A-Za-z0-9]+)"
    r"|(?<![\w&#])#(?P<tag>\w*[^\W\d]\w*)"
    r"|(?<![\w$])\$(?P<cash>[A-Za-z]{1,6})(?![A-Za-z0-9_])"
    r"|(?<![A-Za-z0-9_@])@(?P<user>[A-Za-z0-9_]{1,15})(?![A-Za-z0-9_])"
)
# Byte runs that can never be valid UTF-8 when placed at a character boundary.
_BAD_UTF8 = (b"\xff\xfe", b"\xc3", b"\xe2\x82", b"\x80", b"\xf0\x9f\x8e", b"\xed\xa0\x80")
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _rule_id(tag: str) -> str:
    """A stable snowflake-like rule id per tag, independent of the seed (rules outlive runs)."""
    digest = int.from_bytes(hashlib.sha256(f"rule:{tag}".encode()).digest()[:8], "big")
    created_ms = 1_637_000_000_000 + digest % 86_400_000  # rules were set up in mid-Nov 2021
    return str(((created_ms - _TWITTER_EPOCH_MS) << 22) | (digest >> 42))


RULE_IDS: dict[str, str] = {tag: _rule_id(tag) for tag in _RULE_TAGS}
"""Stream rule tag -> rule id; `matching_rules` always pair a tag with the same id."""
_RULES_JSON: dict[tuple[str, ...], str] = {}  # encoded matching_rules per tag combination

# --------------------------------------------------------------------------------------------
# Vocabulary. Artists, songs and collections are fictional; real companies and public events
# appear only in neutral or widely reported news-style lines.
# --------------------------------------------------------------------------------------------
# Word lists stay packed several to a line: one per line would bury the code in vocabulary.
# fmt: off

_ARTISTS = (
    "Nova Reyes", "DJ Koral", "Lumen Drift", "Sasha Vale", "Mitch Haze", "The Velvet Static",
    "Kaito Mori", "Ayla Sun", "Tropic Ghost", "Maya Lune", "Jaxon Bleu", "Orbit Kid",
    "Selene Marsh", "Bassquake", "Lo-Fi Lupe", "Ruby Arcade", "Dex Monroe", "Neon Saints",
    "Ivy Calloway", "Kid Parallax", "Moonvault", "Tomi Adeyemi Beats", "Static Bloom",
    "Harlow Jinx", "Sol Mendes", "Yuna Park", "Felix Drax", "Cassette Club", "Amara Wave",
    "Big Ledger", "Mila Fontaine", "Echo Ravine", "Rico Suave Jr", "Hana Kisaragi",
    "Lucas Brandt", "Violet Rush", "Grand Hash", "Kora Blaze", "Theo Quill", "Sunny Vex",
)
_SONGS = (
    "Midnight Drive", "Golden Hour", "Paper Hearts", "Neon Rain", "Lost Signals", "Slow Burn",
    "Afterglow", "Static Love", "Ocean Floor", "Satellite", "Blue Velvet Sky", "Gas Money",
    "Floor Price", "Mint Condition", "Cold Wallet", "Block Party", "Summer Ledger", "Night Shift",
    "Wildfire", "Echoes", "Daydream", "Tokyo Rain", "Low Tide", "Heartbeat.exe",
)
_COLLECTIONS = (
    "Genesis Tapes", "Midnight Sessions", "Lofi Apes Club", "Sonic Shards", "Bass Drop Pass",
    "Vinyl Ghosts", "The Beat Vault", "Chain Melodies", "Soundwaves Pass", "Echo Chamber",
    "Synth Society", "Crypto Crooners", "Hip Hop Heads", "Rhythm Robots", "Melody Mints",
    "Tape Deck Club", "Drum Machine Dreams", "Stems Genesis", "Backstage Pass", "Mixtape Mafia",
)
_PLATFORMS = ("Sound", "Catalog", "Zora", "Foundation", "Audius", "Royal", "Async Art", "Nifty Gateway")
_GENRES = (
    "lofi", "hip hop", "techno", "house", "jazz", "indie", "drill", "afrobeats", "k-pop",
    "ambient", "synthwave", "reggaeton", "drum and bass", "trap",
)
_TIMES = (
    "tonight", "at 6pm EST", "this Friday", "in 1 hour", "tomorrow", "at 12pm PST",
    "next week", "on Dec 10", "in 30 min", "this weekend",
)
_EMOJI_POS = ("🎵", "🎶", "🔥", "🚀", "💎", "🙌", "❤️", "✨", "🎧", "🥳", "💯", "🤩", "🎹", "🎸", "👏")
_EMOJI_NEG = ("😡", "🤡", "💀", "😤", "🙄", "👎", "😬", "🚩", "🤮", "😒")
_EMOJI_NEU = ("👀", "🤔", "📢", "🎧", "📈", "📉", "🧵", "📰", "🗓️", "")

_WORD_VARIANTS: dict[str, tuple[str, ...]] = {
    "nft": ("NFT", "NFT", "NFT", "nft", "Nft", "NFT", "#NFT"),
    "nfts": ("NFTs", "NFTs", "nfts", "NFT's", "NFTS"),
    "music": ("music", "music", "Music", "MUSIC", "#music", "music"),
    "eth": ("ETH", "ETH", "eth", "$ETH", "Eth", "ETH"),
    "web3": ("web3", "Web3", "WEB3", "#web3", "web3"),
    "opensea": ("OpenSea", "OpenSea", "opensea", "Opensea", "@opensea", "OPENSEA"),
}
# CJK text has no spaces to end a hashtag or mention, so those languages only get plain words.
_CJK_WORD_VARIANTS: dict[str, tuple[str, ...]] = {
    "nft": ("NFT", "NFT", "nft"),
    "nfts": ("NFT", "NFT"),
    "music": ("music", "Music"),
    "eth": ("ETH", "ETH", "eth"),
    "web3": ("web3", "Web3", "WEB3"),
    "opensea": ("OpenSea", "OpenSea", "opensea"),
}

_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "pos": (
            "Just minted my first {music} {nft}! {epos} {collection} by {artist} is incredible",
            "So proud to drop {collection} on {platform} {time}. {n} editions at {price} {epos}",
            "{music} {nfts} are the future for independent artists. Direct support, real "
            "royalties {epos}",
            "Copped a {collection} on {opensea} 🙌 the production on this is amazing",
            "{artist}'s new drop sold out in {mins} minutes! Huge congrats {epos}",
            "Love how {web3} lets fans actually own a piece of the {music} they love ❤️",
            "Royalties forever. This is why I'm so bullish on {music} {nfts} {epos}",
            "gm {web3} fam! New track dropping {time} as an {nft} on {platform} 🎧",
            "Best {music} {nft} community on the timeline, no contest {epos}",
            "Finally got my hands on {artist} - {song} edition #1. Dream come true {epos}",
            "Kings of Leon put out an album as an {nft} and now everybody is doing it. Great "
            "time to be an indie artist {epos}",
            "The {collection} holders party last night was awesome 🎉 {music} + community = magic",
            "{artist} x {platform} collab is 🔥🔥 go listen {url}",
            "Artists are earning way more from {nfts} than from streaming. Beautiful to see {epos}",
            "Just listed my beat on {opensea} for {price}. Wish me luck! {epos}",
            "Excited to announce my debut {music} {nft} collection: {collection} 🎹 minting {time}",
            "{music} {nfts} made me fall in love with collecting again {epos}",
            "Floor on {collection} up {pct} this week {epos} wagmi",
            "Thank you to everyone who collected {song}! You are amazing {epos}",
            "Snoop Dogg revealing he is Cozomo de' Medici was the best {nft} plot twist of the "
            "year 😂",
            "Holding {collection} is the best decision I made in {web3} this year {epos}",
            "{artist} just airdropped unreleased {genre} stems to holders. This is how you do "
            "it {epos}",
            "Wow {song} by {artist} on {platform} is beautiful. Collected 2 {epos}",
            "Great vibes at the {web3} {music} Twitter Space tonight, so much love in here ❤️",
            "Paid {price} for {song} and I'd do it again. Support artists {epos} #ETH",
            "Congrats {mention} on the sold out {nft} drop {epos}",
            "Bought my first {eth} just to collect {music} {nfts}. No regrets {epos}",
        ),
        "neg": (
            "{nfts} are just a scam to rip off artists and fans. Change my mind {eneg}",
            "Gas fees on {eth} are insane right now. Paid {gas} to mint a {music} {nft} worth less "
            "than that {eneg}",
            "Got rugged again. The {collection} team deleted their discord and ran with the "
            "{eth} {eneg}",
            "Watch out, fake {opensea} links going around. Scammers drained my wallet {eneg}",
            "{music} {nfts} are a solution looking for a problem.",
            "Hate seeing my favorite artists shill {nfts}. Terrible look {eneg}",
            "Another day, another {web3} rug pull. This space is disgusting {eneg}",
            "Floor on {collection} dumped {pct} overnight. Brutal {eneg}",
            "BTS fans are furious about HYBE's {nft} plans and honestly I get it {eneg}",
            "The energy cost of {eth} {nfts} is awful. Not worth it for a jpeg or an mp3",
            "Nobody asked for {web3} in {music}. Just pay artists fairly {eneg}",
            "{opensea} is down AGAIN. Worst UX ever {eneg}",
            "My mint failed and I still lost {gas} in gas. Horrible. {eneg}",
            "Stop DMing me your {nft} projects. Not interested. Blocked. {eneg}",
            "Royalties on {opensea} are a joke, artists get almost nothing {eneg}",
            "This {nft} hype is killing {music}. Sad.",
            "Lost {price} on a fake {collection} drop. Scam alert {url}",
            "The {music} {nft} bubble is going to pop hard. ngmi {eneg}",
            "Ugh, bots botted the whole {collection} mint again. So frustrating {eneg}",
            "A label signing a band of Bored Ape {nfts} is the most cynical thing I saw this "
            "year {eneg}",
            "{artist} promised utility and delivered nothing. Worst {nft} project I ever "
            "bought {eneg}",
            "Ponzi vibes. Every {web3} {music} pitch is the same broken promise {eneg}",
            "Can't believe I paid {price} for {song}. Dead project, dead discord {eneg}",
            "Fake {artist} account selling stolen {music} on {opensea}. Report it! {eneg}",
        ),
        "neu": (
            "New drop: {collection} by {artist}. {n} editions, {price} each. Mint opens "
            "{time}. {url}",
            "What's the best platform for {music} {nfts} right now? {platform} or {opensea}? {eneu}",
            "{artist} - {song} is live on {platform} {url}",
            "HYBE confirms plans for BTS {nft} photo cards. Details: {url}",
            "Universal Music Group announces Kingship, a band made of Bored Ape {nfts} {url}",
            "Gas is at {gwei} gwei on {eth} right now {eneu}",
            "Thread: how {music} {nfts} and on-chain royalties actually work 🧵",
            "{collection} floor price: {floor}. 24h volume: {vol} {eth}",
            "Anyone going to the {web3} {music} meetup {time}?",
            "Reading up on {web3} and {music} licensing. Lots of open questions about rights",
            "Listening to {artist} while checking {opensea} stats {eneu}",
            "3LAU sold millions of dollars of {music} {nfts} this year. Where is the market "
            "heading?",
            "Does anyone know if {platform} supports {genre} releases? {eneu}",
            "Report: {music} {nft} sales reached {vol} {eth} in November {url}",
            "Sound check before the {collection} listening party {time} 🎧",
            "{eth} gas tracker: low {gwei} | avg {gwei} | high {gwei} gwei",
            "{artist} on the future of {music} {nfts} and fan ownership {url}",
            "Is {eth} the only chain that matters for {music} {nfts}? Asking for a friend 👀",
            "{n} wallets hold {collection} now, according to {opensea}",
            "Podcast ep. {ep}: {music}, {web3} and the creator economy {url}",
            "{platform} vs {opensea} fees for {music} {nfts}, compared {url}",
            "How do {music} {nft} royalties get split between producers and labels? {eneu}",
            "Today in {web3}: {collection} mint at {price}, {artist} drop {time}",
        ),
    },
    "es": {
        "pos": (
            "¡Acabo de mintear mi primer {nft} musical! {epos}",
            "Los {nft} musicales son el futuro para los artistas independientes {epos}",
            "Me encanta cómo la {web3} le da poder a los fans y a los artistas ❤️",
            "El piso de {collection} subió {pct} esta semana {epos}",
            "Nuevo lanzamiento de {artist} en {opensea}: {n} ediciones a {price} {epos}",
            "Qué orgullo lanzar mi canción {song} como {nft} en {platform} {epos}",
        ),
        "neg": (
            "Las comisiones de gas en {eth} están por las nubes {eneg}",
            "¿Alguien más piensa que los {nft} son una estafa? {eneg}",
            "Cuidado con los enlaces falsos de {opensea}, me robaron la wallet {eneg}",
            "Qué asco los rug pulls en {web3}, otra vez perdí {price} {eneg}",
        ),
        "neu": (
            "¿Cuál es la mejor plataforma para vender música como {nft}? 🤔",
            "Hoy a las 20h hablamos de {music} y {web3} en un Space {url}",
            "{artist} presenta {collection}: {n} ediciones en {platform} {url}",
        ),
    },
    "pt": {
        "pos": (
            "Acabei de lançar minha música como {nft} na {opensea} {epos}",
            "{music} + {web3} = o futuro dos artistas independentes {epos}",
            "Amei o álbum {collection}, já garanti o meu {nft} {epos}",
            "Que orgulho! {song} esgotou em {mins} minutos {epos}",
        ),
        "neg": (
            "Essa moda de {nft} é golpe, vocês não percebem? {eneg}",
            "Taxa de gas no {eth} tá absurda hoje {eneg}",
            "Fui vítima de golpe com link falso da {opensea}. Cuidado! {eneg}",
        ),
        "neu": (
            "Alguém sabe qual a melhor plataforma pra {nft} de música? {eneu}",
            "Novo drop do {artist} hoje à noite: {n} edições por {price} {url}",
            "Live hoje sobre {music}, {nft} e direitos autorais {url}",
        ),
    },
    "ja": {
        "pos": (
            "初めて音楽 {nft} をミントしました！{epos}",
            "{artist} の新曲が {nft} で発売！{n}枚限定 {epos}",
            "{collection} のフロア価格が {floor} まで上がった {epos}",
            "{web3} で音楽の未来が変わる気がする、楽しみ {epos}",
        ),
        "neg": (
            "ガス代が高すぎる… {eth} どうにかして {eneg}",
            "{nft} って結局詐欺じゃないの？{eneg}",
            "偽の {opensea} リンクに注意してください {eneg}",
        ),
        "neu": (
            "{opensea} で新しいコレクション「{collection}」を公開しました {url}",
            "{web3} と {music} の未来について考えてる {eneu}",
            "音楽 {nft} のロイヤリティってどう分配されるんだろう {eneu}",
        ),
    },
    "fr": {
        "pos": (
            "Je viens de sortir mon premier {nft} musical sur {opensea} {epos}",
            "J'adore le nouveau drop de {artist}, {n} éditions à {price} {epos}",
            "Le floor de {collection} a pris {pct} cette semaine {epos}",
        ),
        "neg": (
            "Les frais de gas sur {eth} sont délirants aujourd'hui {eneg}",
            "Encore un rug pull dans le {web3}… c'est honteux {eneg}",
            "Les {nft} musicaux, c'est une arnaque. Point. {eneg}",
        ),
        "neu": (
            "Les {nft} musicaux : arnaque ou révolution ? {eneu}",
            "Conférence sur la {music} et le {web3} {time} à Paris {url}",
            "{artist} sort {song} en {nft} sur {platform} {url}",
        ),
    },
    "de": {
        "pos": (
            "Mein erster Musik-{nft} ist jetzt live auf {opensea} {epos}",
            "Neuer Drop von {artist}: {n} Editionen für je {price} {epos}",
            "Ich liebe diese {web3} Community, so viel Support für Künstler {epos}",
        ),
        "neg": (
            "Die Gasgebühren auf {eth} sind einfach absurd {eneg}",
            "{nfts} sind Betrug, sorry. {eneg}",
            "Gestern wurde ich mit einem falschen {opensea} Link abgezockt {eneg}",
        ),
        "neu": (
            "Spannender Artikel über {music} {nfts} und Lizenzrechte {url}",
            "Wer kennt gute Plattformen für Musik im {web3}? {eneu}",
            "{artist} veröffentlicht {song} als {nft} auf {platform} {url}",
        ),
    },
    "ko": {
        "pos": (
            "첫 음악 {nft} 민팅 완료! {epos}",
            "{opensea} 에서 {collection} 바닥가 {pct} 상승 {epos}",
            "{artist} 새 앨범 {nft} 로 발매! {n}개 한정 {epos}",
        ),
        "neg": (
            "가스비 너무 비싸요 {eth} {eneg}",
            "하이브 BTS {nft} 반대합니다 {eneg}",
            "{nft} 사기 조심하세요 가짜 링크 돌아다녀요 {eneg}",
        ),
        "neu": (
            "{web3} 음악 플랫폼 추천해주세요 {eneu}",
            "오늘 밤 {music} {nft} 스페이스 합니다 {url}",
        ),
    },
}
# Template moods: 45% positive, 22% negative, the rest neutral/informational.
_POSITIVE_SHARE = 0.45
_NOT_NEUTRAL_SHARE = 0.67

_REPLIES_EN = (
    "congrats!! just collected one {epos}",
    "this is huge {epos}",
    "how much was gas for the mint?",
    "is this a rug? {eneg}",
    "where can I listen before I buy?",
    "scam. reported. {eneg}",
    "Love this! Can't wait for the {nft} drop {epos}",
    "what's the floor on {opensea} rn?",
    "this aged badly {eneg}",
    "100% agree, {web3} needs better UX",
    "link? 👀",
    "wen {nft}?",
    "so good. {music} like this deserves more collectors {epos}",
    "nah this is terrible, fans get nothing {eneg}",
    "minted 3, LFG {epos}",
)
_UND_TEMPLATES = (
    "{epos}{epos}{epos}",
    "{epos} {url}",
    "{epos}{epos} {url}",
    "👀 {url}",
    "{eneg}{eneg}",
)
_PREFIXES = ("gm! ", "Wow. ", "ngl ", "Honestly ", "PSA: ", "lol ", "Yo ", "Okay so ", "Big news: ")
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "pos": (" LFG", " wagmi", " so bullish", " 🙏", "!!", " ❤️"),
    "neg": (" smh", " ngmi", " 🚩", " disgusting.", " awful."),
    "neu": (" thoughts?", " 🤔", " (via {mention})", " 📌"),
}
_HASHTAGS: dict[str, tuple[str, ...]] = {
    "en": (
        "#NFT", "#NFTs", "#MusicNFT", "#musicnfts", "#web3", "#Web3", "#NFTCommunity", "#ETH",
        "#Ethereum", "#OpenSea", "#nftart", "#NFTMusic", "#cryptomusic", "#NFTdrop", "#Metaverse",
        "#crypto", "#IndieMusic", "#NewMusic", "#NFTCollector", "#music", "#NFTGiveaway",
    ),
    "es": ("#NFT", "#MusicNFT", "#web3", "#NFTEspañol", "#música", "#cripto"),
    "pt": ("#NFT", "#NFTBrasil", "#MusicNFT", "#web3", "#música"),
    "ja": ("#NFT", "#音楽NFT", "#NFTアート", "#web3", "#NFTMusic"),
    "fr": ("#NFT", "#NFTFrance", "#MusiqueNFT", "#web3", "#musique"),
    "de": ("#NFT", "#NFTDeutschland", "#MusikNFT", "#web3", "#Musik"),
    "ko": ("#NFT", "#음악NFT", "#web3", "#NFTMusic"),
}
_HASHTAGS["und"] = _HASHTAGS["en"]
_CASHTAGS = ("$ETH", "$ETH", "$ETH", "$SOL", "$BTC", "$AUDIO", "$MATIC", "$APE")
# Appended when a post would otherwise not match any stream rule (X would not have sent it).
_RESCUE = ("#NFT", "#web3", "$ETH", "#music", "#OpenSea", "NFT", "music")

_LANG_WEIGHTS = (
    ("en", 0.68), ("es", 0.08), ("pt", 0.06), ("ja", 0.06), ("fr", 0.04), ("de", 0.03),
    ("ko", 0.05),
)

_FIRST_NAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "en": tuple((n, n) for n in (
        "Alex", "Jordan", "Taylor", "Chris", "Sam", "Jess", "Mike", "Sarah", "Dave", "Nina",
        "Marcus", "Tasha", "Kevin", "Emily", "Andre", "Rachel", "Tyler", "Brianna",
    )),
    "es": tuple((n, n) for n in (
        "Carlos", "María", "Diego", "Lucía", "Javier", "Sofía", "Andrés", "Valentina",
    )),
    "pt": tuple((n, n) for n in (
        "João", "Ana", "Pedro", "Beatriz", "Lucas", "Mariana", "Gabriel", "Larissa",
    )),
    "fr": tuple((n, n) for n in (
        "Julien", "Camille", "Louis", "Chloé", "Hugo", "Léa", "Antoine", "Manon",
    )),
    "de": tuple((n, n) for n in (
        "Lukas", "Anna", "Jonas", "Lena", "Felix", "Marie", "Paul", "Sophie",
    )),
    "ja": (
        ("ゆき", "yuki"), ("けんじ", "kenji"), ("はると", "haruto"), ("あおい", "aoi"),
        ("そうた", "sota"), ("めい", "mei"), ("りく", "riku"), ("さくら", "sakura"),
    ),
    "ko": (
        ("민준", "minjun"), ("지우", "jiwoo"), ("서연", "seoyeon"), ("현우", "hyunwoo"),
        ("지수", "jisoo"), ("태현", "taehyun"), ("하은", "haeun"), ("도윤", "doyun"),
    ),
}
_LAST_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("Smith", "Johnson", "Lee", "Brown", "Garcia", "Miller", "Davis", "Wilson", "Moore",
           "Clark", "Lewis", "Young", "King", "Scott", "Green", "Baker"),
    "es": ("García", "López", "Martínez", "Rodríguez", "Hernández", "Pérez", "Sánchez"),
    "pt": ("Silva", "Santos", "Oliveira", "Souza", "Costa", "Pereira", "Almeida", "Ferreira"),
    "fr": ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand"),
    "de": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker"),
    "ja": ("", "🎵", "@NFT", "｜音楽", "🎹"),
    "ko": ("", "🎵", " | NFT", "🎧"),
}
_HANDLE_HEADS = (
    "beat", "crypto", "nft", "sonic", "lofi", "bass", "vinyl", "synth", "melody", "rhythm",
    "chain", "meta", "degen", "ape", "moon", "wave", "echo", "studio", "indie", "drop", "mint",
    "block", "ether", "sound", "audio", "pixel", "groove", "tempo", "vibe", "neon", "dj", "lil",
    "real", "the", "based", "web3", "onchain", "gm",
)
_HANDLE_TAILS = (
    "smith", "head", "lord", "queen", "king", "collector", "hunter", "maxi", "dao", "labs",
    "records", "beats", "kid", "fan", "whale", "gal", "guy", "trader", "producer", "junkie",
    "nerd", "ninja", "club", "verse", "life", "ape", "punk", "chad", "boi", "tunes", "sounds",
)
_PERSONA_BIO_SUFFIX = ("", "", "", " 🎵", " 🎶", ".eth", " | Web3 Music", " 💎🙌", " (mint in bio)")

# (location, language it leans to or "" for any)
_LOCATIONS: tuple[tuple[str, str], ...] = (
    ("Los Angeles, CA", "en"), ("New York, NY", "en"), ("Brooklyn, NY", "en"),
    ("Nashville, TN", "en"), ("Atlanta, GA", "en"), ("Miami, FL", "en"), ("Austin, TX", "en"),
    ("San Francisco, CA", "en"), ("Chicago, IL", "en"), ("Toronto, Ontario", "en"),
    ("London, England", "en"), ("Manchester, England", "en"), ("Lagos, Nigeria", "en"),
    ("Sydney, Australia", "en"), ("USA", "en"), ("United States", "en"), ("UK", "en"),
    ("Berlin, Germany", "de"), ("Deutschland", "de"), ("Paris, France", "fr"),
    ("Lyon, France", "fr"), ("Madrid, España", "es"), ("Barcelona", "es"),
    ("Ciudad de México", "es"), ("Buenos Aires, Argentina", "es"), ("São Paulo, Brasil", "pt"),
    ("Rio de Janeiro", "pt"), ("Lisboa, Portugal", "pt"), ("Tokyo, Japan", "ja"), ("東京都", "ja"),
    ("大阪", "ja"), ("Seoul, Republic of Korea", "ko"), ("서울", "ko"), ("Dubai", ""),
    ("Singapore", ""), ("Mumbai, India", "en"), ("metaverse", ""), ("the metaverse", ""),
    ("web3", ""), ("🌍", ""), ("Earth", ""), ("On-chain", ""), ("Decentraland", ""),
    ("everywhere & nowhere", ""),
)
_LOCATION_SHARE = 0.6

# Accounts people mention that are not in the posting pool (platforms); ids derive from the handle.
_PLATFORM_ACCOUNTS = (
    "opensea", "soundxyz_", "catalogworks", "AudiusProject", "ourZORA", "withFND", "royal",
    "asyncmusic", "coindesk", "billboard",
)

_NEWS_SITES = (
    "https://www.coindesk.com/business/2021/12/{dd}/{slug}/",
    "https://www.billboard.com/pro/{slug}/",
    "https://www.rollingstone.com/pro/news/{slug}-{n}/",
    "https://decrypt.co/{n}/{slug}",
    "https://www.musicbusinessworldwide.com/{slug}/",
)
_NEWS_SLUGS = (
    "music-nfts-sales-record-november", "hybe-bts-nft-plans-fans-backlash",
    "universal-music-bored-ape-band-kingship", "artists-turn-to-nfts-for-royalties",
    "opensea-volume-hits-new-high", "ethereum-gas-fees-nft-mints", "nft-scams-rise-discord",
    "web3-music-startups-raise-funding",
)
# fmt: on


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def _parse_template(template: str) -> tuple[tuple[str, str | None], ...]:
    """Split a `{slot}` template once at import so rendering is a cheap loop, not str.format."""
    return tuple((literal, name) for literal, name, _, _ in Formatter().parse(template))


_PARSED: dict[str, dict[str, tuple[tuple[tuple[str, str | None], ...], ...]]] = {
    lang: {mood: tuple(_parse_template(t) for t in pool) for mood, pool in moods.items()}
    for lang, moods in _TEMPLATES.items()
}
_ARTIST_SLUGS = tuple(_slug(a) for a in _ARTISTS)
_SONG_SLUGS = tuple(_slug(a) for a in _SONGS)
_COLLECTION_SLUGS = tuple(_slug(a) for a in _COLLECTIONS)
_PARSED_REPLIES = tuple(_parse_template(t) for t in _REPLIES_EN)
_PARSED_UND = tuple(_parse_template(t) for t in _UND_TEMPLATES)
_PARSED_SUFFIXES = {
    mood: tuple(_parse_template(t) for t in pool) for mood, pool in _SUFFIXES.items()
}


def _ascii_handle(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9_]", "", ascii_text)


def _snowflake(ms: int, low22: int) -> int:
    return ((ms - _TWITTER_EPOCH_MS) << 22) | (low22 & _LOW22)


def _iso(ms: int) -> str:
    """X's created_at format: whole seconds with a literal `.000Z`."""
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass(frozen=True)
class _Author:
    id: str
    username: str
    lang: str
    json: str  # the includes.users entry, pre-encoded once: authors repeat across many posts


@dataclass
class _Recent:
    """A recently streamed post that later reposts, replies and quotes can point at."""

    id: str
    author: int
    text: str
    lang: str
    urls: dict[str, tuple[str, str]]
    is_repost: bool


class SampleGenerator:
    """Produces stream lines one at a time and counts what it produced in `stats`.

    `generate_lines` and `write_sample` are thin wrappers; use this class directly when the
    counts are needed alongside the lines (e.g. a benchmark that reports what it fed in).
    """

    def __init__(
        self,
        lines: int,
        seed: int = DEFAULT_SEED,
        start: datetime = DEFAULT_START,
        posts_per_hour: float = 256.0,
    ) -> None:
        if lines < 0:
            raise ValueError(f"lines must be >= 0, got {lines}")
        if not posts_per_hour > 0 or math.isinf(posts_per_hour):
            raise ValueError(f"posts_per_hour must be a positive number, got {posts_per_hour}")
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self.lines = lines
        self.seed = seed
        self.stats = SampleStats()
        self._start_ms = int(start.timestamp() * 1000)
        self._base_rate = posts_per_hour / (1 + _BURST_GAIN) / 3600.0  # posts per second
        # Separate streams so e.g. a longer author pool does not reshuffle every post's text.
        self._rng = random.Random(f"musicnft-sample:{seed}:content")
        self._clock_rng = random.Random(f"musicnft-sample:{seed}:clock")
        self._authors = self._make_authors(random.Random(f"musicnft-sample:{seed}:authors"))
        self._handle_ids: dict[str, str] = {a.username: a.id for a in self._authors}
        for handle in _PLATFORM_ACCOUNTS:
            digest = hashlib.sha256(f"account:{handle}".encode()).digest()
            self._handle_ids[handle] = str(int.from_bytes(digest[:4], "big") % 900_000_000 + 10**8)
        self._mentionable = tuple(self._handle_ids)
        self._t = 0.0  # seconds since start
        self._next_hour = 0.0
        self._burst_end = -1.0
        self._burst_factor = 1.0
        self._counter = 0
        self._dedup: deque[bytes] = deque(maxlen=_DEDUP_WINDOW)
        self._recent: deque[_Recent] = deque(maxlen=_DEDUP_WINDOW)
        self._lang = "en"
        self._urls: dict[str, tuple[str, str]] = {}
        self._last_recent: _Recent | None = None
        self._slots: dict[str, Callable[[], str]] = {
            "nft": lambda: self._word("nft"),
            "nfts": lambda: self._word("nfts"),
            "music": lambda: self._word("music"),
            "eth": lambda: self._word("eth"),
            "web3": lambda: self._word("web3"),
            "opensea": lambda: self._word("opensea"),
            "artist": lambda: self._pick(_ARTISTS),
            "song": lambda: self._pick(_SONGS),
            "collection": lambda: self._pick(_COLLECTIONS),
            "platform": lambda: self._pick(_PLATFORMS),
            "genre": lambda: self._pick(_GENRES),
            "time": lambda: self._pick(_TIMES),
            "price": self._price,
            "floor": self._price,
            "n": lambda: str(self._pick((10, 25, 50, 100, 111, 250, 500, 1000, 10000))),
            "mins": lambda: str(self._rng.randint(2, 90)),
            "pct": lambda: f"{self._rng.randint(5, 80)}%",
            "gas": lambda: f"${self._rng.randint(40, 400)}",
            "gwei": lambda: str(self._rng.randint(35, 250)),
            "vol": lambda: f"{self._rng.randint(10, 9000):,}",
            "ep": lambda: str(self._rng.randint(3, 120)),
            "epos": lambda: self._pick(_EMOJI_POS),
            "eneg": lambda: self._pick(_EMOJI_NEG),
            "eneu": lambda: self._pick(_EMOJI_NEU),
            "url": self._content_url,
            "mention": lambda: "@" + self._pick(self._mentionable),
        }

    # ---------------------------------------------------------------- authors

    def _make_authors(self, rng: random.Random) -> tuple[_Author, ...]:
        """A fixed pool: Pareto followers, ~5% verified, ~60% with a location, one language each."""
        langs = [lang for lang, _ in _LANG_WEIGHTS]
        weights = [w for _, w in _LANG_WEIGHTS]
        taken = {h.lower() for h in _PLATFORM_ACCOUNTS}
        ids: set[str] = set()
        authors: list[_Author] = []
        for _ in range(_AUTHORS):
            lang = rng.choices(langs, weights)[0]
            username, name = self._make_names(rng, lang)
            base = username
            while username.lower() in taken:
                username = f"{base[:11]}{rng.randint(1, 9999)}"
            taken.add(username.lower())
            user_id = self._make_user_id(rng)
            while user_id in ids:
                user_id = self._make_user_id(rng)
            ids.add(user_id)
            if rng.random() < 0.03:
                followers = 0
            else:  # Pareto(α=0.85, xₘ=40): median ≈ 90, a handful of accounts above 100k
                followers = min(int(40 * rng.paretovariate(0.85)), 25_000_000)
            verified = rng.random() < (0.6 if followers > 50_000 else 0.045)
            user: dict[str, Any] = {
                "id": user_id,
                "username": username,
                "name": name,
                "verified": verified,
            }
            if rng.random() < _LOCATION_SHARE:
                leaning = [loc for loc, ll in _LOCATIONS if ll == lang]
                if leaning and rng.random() < 0.6:
                    user["location"] = rng.choice(leaning)
                else:
                    user["location"] = rng.choice(_LOCATIONS)[0]
            user["public_metrics"] = {
                "followers_count": followers,
                "following_count": min(int(rng.lognormvariate(5.5, 1.2)), 7500),
                "tweet_count": int(rng.lognormvariate(8.0, 1.5)) + 1,
                "listed_count": int(followers * rng.uniform(0.0, 0.02)),
            }
            authors.append(_Author(user_id, username, lang, _ENCODER.encode(user)))
        return tuple(authors)

    @staticmethod
    def _make_names(rng: random.Random, lang: str) -> tuple[str, str]:
        if rng.random() < 0.5:  # a persona account: "beatsmith" / "Beat Smith"
            head, tail = rng.choice(_HANDLE_HEADS), rng.choice(_HANDLE_TAILS)
            style = rng.randrange(4)
            if style == 0:
                handle = head + tail
            elif style == 1:
                handle = head.capitalize() + tail.capitalize()
            elif style == 2:
                handle = f"{head}_{tail}"
            else:
                handle = f"{head}{tail}{rng.randint(1, 999)}"
            name = f"{head.capitalize()} {tail.capitalize()}"
            if rng.random() < 0.15:
                name = name.upper()
            return handle[:15], name + rng.choice(_PERSONA_BIO_SUFFIX)
        display, roman = rng.choice(_FIRST_NAMES[lang])
        last = rng.choice(_LAST_NAMES[lang])
        if lang in ("ja", "ko"):
            name = display + last
            handle = (
                roman + rng.choice(("", "_nft", "_music", "0x", "_eth")) + str(rng.randint(1, 9999))
            )
        else:
            name = f"{display} {last}"
            style = rng.randrange(4)
            first_a, last_a = _ascii_handle(display), _ascii_handle(last)
            if style == 0:
                handle = (first_a + last_a).lower()
            elif style == 1:
                handle = f"{first_a}_{last_a}"
            elif style == 2:
                handle = f"{first_a.lower()}{rng.randint(1, 99999)}"
            else:
                handle = f"0x{first_a.lower()}"
            if rng.random() < 0.15:
                name += rng.choice((".eth", " 🎶", " | NFT", " 🇺🇸" if lang == "en" else " 🎵"))
        return handle[:15], name

    @staticmethod
    def _make_user_id(rng: random.Random) -> str:
        if rng.random() < 0.35:  # accounts from before 2014 have short sequential ids
            return str(rng.randint(1_000_000, 3_000_000_000))
        created_ms = rng.randint(1_400_000_000_000, 1_638_000_000_000)
        return str(_snowflake(created_ms, rng.getrandbits(22)))

    def _pick_author(self) -> int:
        """Activity is skewed too: a few accounts (bots, shillers) post a lot."""
        return int(_AUTHORS * self._rng.random() ** 2.2)

    # ---------------------------------------------------------------- text

    def _pick(self, seq: Any) -> Any:
        """`random.choice` without its rejection sampling: ~3x faster, still deterministic."""
        return seq[int(self._rng.random() * len(seq))]

    def _word(self, key: str) -> str:
        table = _CJK_WORD_VARIANTS if self._lang in ("ja", "ko") else _WORD_VARIANTS
        return self._pick(table[key])

    def _price(self) -> str:
        value = self._pick((0.01, 0.025, 0.05, 0.069, 0.08, 0.1, 0.15, 0.25, 0.5, 1, 1.5, 3))
        return f"Ξ{value}" if self._rng.random() < 0.2 else f"{value} ETH"

    def _tco(self, expanded: str) -> str:
        """A t.co link for the text; the current post's url map remembers its expansion."""
        code = "".join(self._rng.choices(_ALNUM, k=10))
        short = f"https://t.co/{code}"
        display = expanded.split("://", 1)[1].removeprefix("www.")
        if len(display) > 26:
            display = display[:25] + "…"
        self._urls[short] = (expanded, display)
        return short

    def _content_url(self) -> str:
        rng = self._rng
        pick = self._pick
        r = rng.random()
        if r < 0.25:
            expanded = f"https://opensea.io/collection/{pick(_COLLECTION_SLUGS)}"
        elif r < 0.35:
            contract = f"0x{rng.getrandbits(160):040x}"
            expanded = f"https://opensea.io/assets/{contract}/{rng.randint(1, 9999)}"
        elif r < 0.47:
            expanded = f"https://www.sound.xyz/{pick(_ARTIST_SLUGS)}/{pick(_SONG_SLUGS)}"
        elif r < 0.55:
            expanded = f"https://beta.catalog.works/{pick(_ARTIST_SLUGS)}/{pick(_SONG_SLUGS)}"
        elif r < 0.60:
            expanded = f"https://zora.co/collections/0x{rng.getrandbits(160):040x}"
        elif r < 0.65:
            expanded = (
                f"https://foundation.app/@{pick(_ARTIST_SLUGS)}/{pick(_SONG_SLUGS)}"
                f"-{rng.randint(1, 99999)}"
            )
        elif r < 0.70:
            expanded = f"https://audius.co/{pick(_ARTIST_SLUGS)}/{pick(_SONG_SLUGS)}"
        elif r < 0.77:
            expanded = "https://youtu.be/" + "".join(rng.choices(_ALNUM, k=11))
        elif r < 0.82:
            expanded = "https://open.spotify.com/track/" + "".join(rng.choices(_ALNUM, k=22))
        elif r < 0.92:
            expanded = pick(_NEWS_SITES).format(
                dd=f"{rng.randint(1, 28):02d}", slug=pick(_NEWS_SLUGS), n=rng.randint(1000, 999999)
            )
        elif r < 0.95:
            expanded = f"https://etherscan.io/tx/0x{rng.getrandbits(256):064x}"
        else:
            expanded = "https://discord.gg/" + "".join(rng.choices(_ALNUM, k=8))
        return self._tco(expanded)

    def _render(self, parsed: tuple[tuple[str, str | None], ...]) -> str:
        slots = self._slots
        parts: list[str] = []
        for literal, name in parsed:
            parts.append(literal)
            if name is not None:
                parts.append(slots[name]())
        return "".join(parts)

    def _body(self, lang: str) -> str:
        """An original post's text: a template in the language and mood, plus decoration."""
        rng = self._rng
        self._lang = lang
        if lang == "und":
            text = self._render(self._pick(_PARSED_UND))
            return text + " " + " ".join(rng.sample(_HASHTAGS["en"], rng.randint(1, 3)))
        r = rng.random()
        mood = "pos" if r < _POSITIVE_SHARE else "neg" if r < _NOT_NEUTRAL_SHARE else "neu"
        text = self._render(self._pick(_PARSED[lang][mood]))
        if lang == "en":
            if rng.random() < 0.15:
                prefix = self._pick(_PREFIXES)
                if text[:1].isupper() and text[1:2].islower():
                    text = text[:1].lower() + text[1:]
                text = prefix + text
            if rng.random() < 0.25:
                text += self._render(self._pick(_PARSED_SUFFIXES[mood]))
        return self._decorate(text, lang)

    def _decorate(self, text: str, lang: str) -> str:
        rng = self._rng
        text = text.rstrip()
        if "https://t.co/" not in text and rng.random() < 0.30:
            text += " " + self._content_url()
        if rng.random() < 0.55:
            tags = rng.sample(_HASHTAGS[lang], min(rng.randint(1, 4), len(_HASHTAGS[lang])))
            text += " " + " ".join(tags)
        if rng.random() < 0.12:
            text += " " + self._pick(_CASHTAGS)
        return text

    def _ensure_keyword(self, text: str) -> str:
        """X only delivers posts matching a rule; almost all do via a tracked keyword."""
        if _KEYWORD_RE.search(text) is None and self._rng.random() < 0.97:
            text += " " + self._pick(_RESCUE)
        return text

    @staticmethod
    def _shorten(text: str, limit: int) -> str:
        """Cut at a space (never inside an entity) and mark the cut like X does."""
        if len(text) <= limit:
            return text
        cut = text.rfind(" ", 0, limit - 1)
        return (text[:cut] if cut > 0 else text[: limit - 1]) + "…"

    # ---------------------------------------------------------------- posts

    def _advance_clock(self) -> None:
        """Non-homogeneous Poisson arrivals: daily cosine rhythm plus hourly-scheduled drops."""
        rng = self._clock_rng
        start_s = self._start_ms / 1000.0
        while True:
            hour = ((start_s + self._t) % 86_400.0) / 3600.0
            day = 1.0 + _DAY_AMPLITUDE * math.cos(2 * math.pi * (hour - _DAY_PEAK_HOUR_UTC) / 24)
            burst = self._burst_factor if self._t < self._burst_end else 1.0
            t_next = self._t + rng.expovariate(self._base_rate * day * burst)
            if t_next < self._next_hour:
                self._t = t_next
                return
            # Crossing an hour boundary: decide whether a drop starts there, then redraw
            # (memorylessness makes restarting the wait at the boundary exact).
            self._t = self._next_hour
            boundary_hour = ((start_s + self._t) % 86_400.0) / 3600.0
            boundary_day = 1.0 + _DAY_AMPLITUDE * math.cos(
                2 * math.pi * (boundary_hour - _DAY_PEAK_HOUR_UTC) / 24
            )
            if self._t >= self._burst_end and rng.random() < (
                _BURST_P * boundary_day / (1 + _DAY_AMPLITUDE)
            ):
                self._burst_end = self._t + 60.0 * rng.uniform(*_BURST_MINUTES)
                self._burst_factor = rng.uniform(*_BURST_FACTOR)
            self._next_hour += 3600.0

    def _next_id(self, ms: int) -> str:
        self._counter += 1
        return str(_snowflake(ms, self._counter * _ID_SCRAMBLE))

    def _metrics(self, repost: bool) -> dict[str, int]:
        """Counts right after posting: mostly 0. Reposts carry the original's (larger) counts."""
        rng = self._rng
        nonzero = 0.6 if repost else 0.08

        def count(scale: float) -> int:
            return int(scale * rng.paretovariate(1.3)) if rng.random() < nonzero else 0

        name = "retweet_count" if rng.random() < 0.5 else "repost_count"
        metrics = {
            name: count(3.0),
            "reply_count": count(1.0),
            "like_count": count(5.0),
            "quote_count": count(0.5),
        }
        if rng.random() < 0.7:
            metrics["impression_count"] = count(40.0)
        return metrics

    def _external_id(self, ms: int) -> str:
        """An older post outside the stream (what a repost or reply points at)."""
        age_ms = int(self._rng.uniform(60_000, 14 * 86_400_000))
        return str(_snowflake(ms - age_ms, self._rng.getrandbits(22)))

    def _entities(self, text: str) -> dict[str, list[dict[str, Any]]]:
        hashtags: list[dict[str, Any]] = []
        cashtags: list[dict[str, Any]] = []
        mentions: list[dict[str, Any]] = []
        urls: list[dict[str, Any]] = []
        for m in _ENTITY_RE.finditer(text):
            start, end = m.span()
            kind = m.lastgroup or "user"
            value = m.group(kind)
            if kind == "url":
                expanded, display = self._urls[value]
                urls.append(
                    {
                        "start": start,
                        "end": end,
                        "url": value,
                        "expanded_url": expanded,
                        "display_url": display,
                    }
                )
            elif kind == "tag":
                hashtags.append({"start": start, "end": end, "tag": value})
            elif kind == "cash":
                cashtags.append({"start": start, "end": end, "tag": value})
            else:
                mentions.append(
                    {
                        "start": start,
                        "end": end,
                        "username": value,
                        "id": self._handle_ids[value],
                    }
                )
        entities: dict[str, list[dict[str, Any]]] = {}
        if hashtags:
            entities["hashtags"] = hashtags
        if cashtags:
            entities["cashtags"] = cashtags
        if mentions:
            entities["mentions"] = mentions
        if urls:
            entities["urls"] = urls
        return entities

    def _rules(self, text: str) -> str:
        found = {m.group(1).lower() for m in _KEYWORD_RE.finditer(text)}
        if any("opensea.io" in expanded for expanded, _ in self._urls.values()):
            found.add("opensea")
        tags = []
        if "music" in found:  # the music rule also catches music posts without "NFT"
            tags.append("music-nft")
        if "nft" in found:
            tags.append("nft-general")
        tags.extend(tag for tag in ("eth", "web3", "opensea") if tag in found)
        if not tags:
            tags = ["nft-general"]  # matched a broader rule (e.g. on the expanded URL)
        if len(tags) > 2 or (len(tags) == 2 and self._rng.random() < 0.5):
            tags = self._rng.sample(tags, 2 if self._rng.random() < 0.5 else 1)
            tags.sort(key=_RULE_TAGS.index)
        key = tuple(tags)
        encoded = _RULES_JSON.get(key)
        if encoded is None:
            encoded = _ENCODER.encode([{"id": RULE_IDS[tag], "tag": tag} for tag in tags])
            _RULES_JSON[key] = encoded
        return encoded

    def _build_post(self) -> tuple[dict[str, Any], str, str]:
        """A new post at the next arrival time: (data, pre-encoded user, pre-encoded rules)."""
        rng = self._rng
        self._advance_clock()
        ms = self._start_ms + int(self._t * 1000)
        if rng.random() < _OUT_OF_ORDER_SHARE:
            ms -= rng.randint(1000, 6000)  # delivered a few seconds late, behind newer posts
        post_id = self._next_id(ms)
        author_idx = self._pick_author()
        author = self._authors[author_idx]
        self._urls = {}
        lang = (
            "und" if rng.random() < _UND_SHARE else (author.lang if rng.random() < 0.88 else "en")
        )
        referenced: list[dict[str, str]] | None = None
        match_text: str | None = None
        reply_to: str | None = None
        kind = rng.random()
        recent = self._recent[rng.randrange(len(self._recent))] if self._recent else None
        if recent is not None and (recent.is_repost or recent.author == author_idx):
            recent = None
        is_repost = False
        if kind < _REPOST_SHARE:
            is_repost = True
            if recent is not None and rng.random() < 0.5:
                orig_id, orig_author = recent.id, self._authors[recent.author]
                orig_text, lang = recent.text, recent.lang
                self._urls = dict(recent.urls)
            else:
                orig_id = self._external_id(ms)
                orig_author = self._authors[self._pick_author()]
                if orig_author.id == author.id:
                    orig_author = self._authors[(author_idx + 1) % _AUTHORS]
                orig_text = self._ensure_keyword(self._body(lang))
            # v2 cuts a repost's text to 140 characters; rules matched the whole original.
            match_text = f"RT @{orig_author.username}: {orig_text}"
            text = self._shorten(match_text, 140)
            referenced = [{"type": "retweeted", "id": orig_id}]
        elif kind < _REPOST_SHARE + _REPLY_SHARE:
            if recent is not None and rng.random() < 0.4:
                target_id, target = recent.id, self._authors[recent.author]
            else:
                target_id = self._external_id(ms)
                target = self._authors[self._pick_author()]
            if lang == "en" and rng.random() < 0.7:
                self._lang = "en"
                body = self._render(self._pick(_PARSED_REPLIES))
            else:
                body = self._body(lang)
            handles = f"@{target.username} "
            if rng.random() < 0.15:
                handles += f"@{self._pick(self._mentionable)} "
            text = self._ensure_keyword(handles + body)
            referenced = [{"type": "replied_to", "id": target_id}]
            reply_to = target.id
        elif kind < _REPOST_SHARE + _REPLY_SHARE + _QUOTE_SHARE:
            if recent is not None and rng.random() < 0.5:
                quoted_id, quoted = recent.id, self._authors[recent.author]
            else:
                quoted_id = self._external_id(ms)
                quoted = self._authors[self._pick_author()]
            body = self._ensure_keyword(self._body(lang))
            link = self._tco(f"https://twitter.com/{quoted.username}/status/{quoted_id}")
            text = f"{body} {link}"
            referenced = [{"type": "quoted", "id": quoted_id}]
        else:
            text = self._ensure_keyword(self._body(lang))
        if len(text) > 280:
            text = self._shorten(text, 280)

        data: dict[str, Any] = {
            "id": post_id,
            "text": text,
            "created_at": _iso(ms),
            "lang": lang,
            "author_id": author.id,
            "edit_history_tweet_ids": [post_id],
            "public_metrics": self._metrics(is_repost),
        }
        entities = self._entities(text)
        if entities:
            data["entities"] = entities
        if referenced is not None:
            data["referenced_tweets"] = referenced
        if reply_to is not None:
            data["in_reply_to_user_id"] = reply_to
        self._last_recent = _Recent(post_id, author_idx, text, lang, self._urls, is_repost)
        return data, author.json, self._rules(text if match_text is None else match_text)

    @staticmethod
    def _encode(data: Any, user_json: str, rules_json: str) -> str:
        return (
            f'{{"data":{_ENCODER.encode(data)},"includes":{{"users":[{user_json}]}},'
            f'"matching_rules":{rules_json}}}'
        )

    # ---------------------------------------------------------------- malformed

    def _malformed(self, kind: str) -> bytes:
        """A broken line of `kind`, built from a fresh post so any id it carries is unique."""
        rng = self._rng
        data, user_json, rules_json = self._build_post()
        if kind == "truncated_json":
            line = self._encode(data, user_json, rules_json)
            return line[: rng.randint(len(line) // 5, len(line) - 2)].encode()
        if kind == "missing_id":
            del data["id"]
            return self._encode(data, user_json, rules_json).encode()
        if kind == "wrong_types":
            variant = rng.randrange(6)
            if variant == 5:  # the whole data object arrived double-encoded
                return (
                    f'{{"data":{json.dumps(_ENCODER.encode(data), ensure_ascii=False)},'
                    f'"includes":{{"users":[{user_json}]}},"matching_rules":{rules_json}}}'
                ).encode()
            if variant == 0:
                data["id"] = [data["id"]]
            elif variant == 1:
                data["id"] = {"id": data["id"]}
            elif variant == 2:
                data["id"] = True
            elif variant == 3:
                data["text"] = rng.randint(0, 10**6)
            else:
                data["text"] = None
            return self._encode(data, user_json, rules_json).encode()
        if kind == "huge_text":
            # The text repeated to >= 1.5M characters. Escaping one copy and repeating the bytes
            # equals escaping the whole text, and is ~100x faster than encoding 1.5 MB of JSON.
            unit = data["text"] + " "
            copies = -(-_HUGE_TEXT_CHARS // len(unit))
            data["text"] = ""
            head, tail = self._encode(data, user_json, rules_json).split('"text":""', 1)
            escaped = _ENCODER.encode(unit)[1:-1].encode()
            return b"".join((head.encode(), b'"text":"', escaped * copies, b'"', tail.encode()))
        if kind == "invalid_utf8":
            encoded = self._encode(data, user_json, rules_json).encode()
            text_start = encoded.index(b'"text":"') + len(b'"text":"')
            text_end = encoded.index(b'","created_at":', text_start)
            spaces = [i for i in range(text_start, text_end) if encoded[i] == 0x20]
            at = rng.choice(spaces) if spaces else text_start  # a character boundary
            bad = rng.choice(_BAD_UTF8)
            return encoded[:at] + bad + encoded[at:]
        # not_object: a JSON value on the line that is not an object
        variant = rng.randrange(4)
        if variant == 0:
            return f"[{self._encode(data, user_json, rules_json)}]".encode()
        if variant == 1:
            return b"[]"
        if variant == 2:
            return str(rng.choice((0, 1, -1, 429, 503))).encode()
        return f"[{rng.randint(0, 999)},{rng.random():.3f}]".encode()

    # ---------------------------------------------------------------- the stream

    def __iter__(self) -> Iterator[bytes]:
        """Yield exactly `self.lines` lines (no trailing newline), updating `stats` as it goes."""
        rng = self._rng
        stats = self.stats
        malformed_at = -1
        kinds: list[str] = []
        for index in range(self.lines):
            if index % _MALFORMED_EVERY == 0:
                malformed_at = index + rng.randrange(_MALFORMED_EVERY)
            stats.lines += 1
            if index == malformed_at:
                if not kinds:  # deal kinds in shuffled rounds so every kind gets an equal share
                    kinds = list(MALFORMED_KINDS)
                    rng.shuffle(kinds)
                kind = kinds.pop()
                stats.malformed[kind] += 1
                yield self._malformed(kind)
                continue
            r = rng.random()
            if r < _KEEP_ALIVE_SHARE:
                stats.keep_alives += 1
                yield b""
                continue
            if r < _KEEP_ALIVE_SHARE + _DUPLICATE_SHARE and self._dedup:
                stats.posts += 1
                stats.duplicates += 1
                yield self._dedup[rng.randrange(len(self._dedup))]
                continue
            data, user_json, rules_json = self._build_post()
            line = self._encode(data, user_json, rules_json).encode()
            self._dedup.append(line)
            if self._last_recent is not None:
                self._recent.append(self._last_recent)
            stats.posts += 1
            stats.unique_posts += 1
            yield line


def generate_lines(
    lines: int,
    seed: int = DEFAULT_SEED,
    start: datetime = DEFAULT_START,
    posts_per_hour: float = 256.0,
) -> Iterator[bytes]:
    """Yields exactly `lines` lines, each WITHOUT the trailing newline, as bytes.

    Lazy: lines are made on demand, so `generate_lines(10_000_000)` is fine for a benchmark.
    Use `SampleGenerator` instead when the counts of what was emitted are needed.
    """
    return iter(SampleGenerator(lines, seed, start, posts_per_hour))


def _write_lines(out: BinaryIO, generator: SampleGenerator) -> None:
    chunk: list[bytes] = []
    size = 0
    for line in generator:
        chunk.append(line)
        size += len(line) + 1
        if size >= 1 << 20:  # batch writes: per-line gzip writes are several times slower
            chunk.append(b"")
            out.write(b"\n".join(chunk))
            chunk, size = [], 0
    if chunk:
        chunk.append(b"")
        out.write(b"\n".join(chunk))


def write_sample(
    path: Path,
    lines: int = SAMPLE_LINES,
    seed: int = DEFAULT_SEED,
    start: datetime = DEFAULT_START,
    posts_per_hour: float = 256.0,
) -> SampleStats:
    """Writes lines joined by b"\\n" (plus final newline); gzip when path ends with .gz, with
    gzip mtime=0 and no filename in the header so the bytes are reproducible."""
    path = Path(path)
    generator = SampleGenerator(lines, seed, start, posts_per_hour)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as raw:
        if path.name.endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
                _write_lines(gz, generator)  # type: ignore[arg-type]  # GzipFile is a BinaryIO
        else:
            _write_lines(raw, generator)
    return generator.stats
