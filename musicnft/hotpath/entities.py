"""Which entities (artists, labels, collections, marketplaces, platforms) a post mentions.

Keyword counts cannot say *who* is being talked about; an entities file can. The default file,
`entities.json` beside this module (shipped in the Lambda bundle with the rest of the hot path),
lists each entity's id, display name, kind, aliases, hashtags, handles and OpenSea collection
slugs; `MUSICNFT_ENTITIES_FILE` (read by `musicnft.settings`) replaces it as a whole.

The matching rule (issue 18), applied exactly:
- an alias occurs in the text, case-insensitively, with no letter or digit directly before or
  after it (so "BTS's", "#BTS", "(BTS)" and "https://opensea.io/..." match; "subtle", "BTSX" and
  "2BTS" do not; a space inside an alias matches any run of whitespace, so a line break between
  "Bored Ape" and "Yacht Club" does not hide it);
- or a hashtag or cashtag equals an alias with its spaces removed ("#BoredApeYachtClub"), or one
  of the entity's listed hashtags, case-insensitively;
- or a mention equals one of its handles, case-insensitively.
Short ambiguous words (Royal, Catalog, Sound) are never aliases on their own: each entity's `note`
in the file says which qualifier it needs.

Pure and cheap (a few compiled patterns per entity), so the hot path and the batch path tag every
post with the same code, like `enrich`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_FILE = Path(__file__).with_name("entities.json")
KINDS = ("artist", "label", "collection", "marketplace", "platform")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# Tags and mentions written in the text (the stored lists may lack them: cashtags are not stored,
# Bluesky stores mentions as DIDs). A '#' or '$' then letters, digits or '_', with no letter or
# digit before it; an '@' then a name, which for Bluesky is a domain (`name.bsky.social`): the
# whole name and its part before the first dot (X's usernames stop there) are both candidates.
_TEXT_TAG = re.compile(r"(?<![^\W_])[#$]([^\W_]\w*)")
_TEXT_MENTION = re.compile(r"(?<![\w@])@(\w+(?:[.-]\w+)*)")
# "no letter or digit directly before or after": [^\W_] is a letter or digit in any script.
_NOT_ALNUM_BEFORE = r"(?<![^\W_])"
_NOT_ALNUM_AFTER = r"(?![^\W_])"


class EntitiesFileError(ValueError):
    """The entities file cannot be used; the message names the file and the entity."""


@dataclass(frozen=True)
class Entity:
    id: str
    name: str
    kind: str
    aliases: tuple[str, ...]
    hashtags: tuple[str, ...] = ()
    handles: tuple[str, ...] = ()
    opensea_slugs: tuple[str, ...] = ()
    note: str = ""


def _alias_pattern(aliases: Sequence[str]) -> re.Pattern[str] | None:
    if not aliases:
        return None
    parts = [
        r"\s+".join(re.escape(word) for word in alias.split())
        for alias in sorted(aliases, key=len, reverse=True)
    ]
    return re.compile(
        _NOT_ALNUM_BEFORE + "(?:" + "|".join(parts) + ")" + _NOT_ALNUM_AFTER, re.IGNORECASE
    )


def _fold(value: str) -> str:
    return value.casefold()


class EntityCatalog:
    """The entities of one file, ready to match posts."""

    def __init__(self, entities: Sequence[Entity]) -> None:
        self.entities: tuple[Entity, ...] = tuple(entities)
        # (id, pattern, needles): the pattern runs only when the lower-cased text contains the
        # first word of one of the entity's aliases (a substring test is ~100× cheaper, and most
        # posts name no entity)
        self._patterns = [
            (e.id, _alias_pattern(e.aliases), tuple({a.split()[0].lower() for a in e.aliases}))
            for e in self.entities
        ]
        self._id_order = tuple(e.id for e in self.entities)
        # every entity's needles once: one pass of substring tests per text, not one per entity
        self._needles = tuple(sorted({n for _, _, needles in self._patterns for n in needles}))
        self._tags: dict[str, list[str]] = {}
        self._handles: dict[str, list[str]] = {}
        for e in self.entities:
            tags = {_fold("".join(a.split())) for a in e.aliases}
            tags.update(_fold(t.lstrip("#$")) for t in e.hashtags)
            for tag in tags:
                self._tags.setdefault(tag, []).append(e.id)
            for handle in {_fold(h.lstrip("@")) for h in e.handles}:
                self._handles.setdefault(handle, []).append(e.id)

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.entities]

    def get(self, entity_id: str) -> Entity | None:
        return next((e for e in self.entities if e.id == entity_id), None)

    def match(
        self, text: str | None, tags: Iterable[str] = (), mentions: Iterable[str] = ()
    ) -> list[str]:
        """Ids of the entities mentioned, in file order, each once. `tags` are hashtags and
        cashtags (with or without '#'/'$'), `mentions` handles (with or without '@')."""
        found: set[str] = set()
        for tag in tags:
            if isinstance(tag, str):
                found.update(self._tags.get(tag.lstrip("#$").casefold(), ()))  # _fold, inline
        for mention in mentions:
            if isinstance(mention, str):
                found.update(self._handles.get(mention.lstrip("@").casefold(), ()))
        if isinstance(text, str) and text:
            lowered = text.lower()
            present = {n for n in self._needles if n in lowered}
            if present:
                for entity_id, pattern, needles in self._patterns:
                    if (
                        entity_id not in found
                        and pattern is not None
                        and not present.isdisjoint(needles)
                        and pattern.search(text)
                    ):
                        found.add(entity_id)
        if not found:
            return []
        return [i for i in self._id_order if i in found]

    def post_entities(self, post: Mapping[str, Any]) -> list[str]:
        """The entities a post mentions: its text, its hashtags (stored and in the text), the
        cashtags in its text, and its mentions (stored, X-style and Bluesky-style in the text)."""
        text = post.get("text")
        text = text if isinstance(text, str) else ""
        tags = [*(post.get("hashtags") or [])]
        mentions = [*(post.get("mentions") or [])]
        if "#" in text or "$" in text:
            tags += _TEXT_TAG.findall(text)
        if "@" in text:
            for name in _TEXT_MENTION.findall(text):
                mentions += [name, name.partition(".")[0]]
        return self.match(text, tags, mentions)


def _strings(entry: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise EntitiesFileError(f"{where}: {key!r} must be a list of non-empty strings")
    return tuple(v.strip() for v in value)


def parse_catalog(data: Any, source: str = "entities file") -> EntityCatalog:
    """The catalog in `data` (the file's JSON), checked entity by entity."""
    entries = data.get("entities") if isinstance(data, Mapping) else None
    if not isinstance(entries, list):
        raise EntitiesFileError(f"{source}: expected an object with an 'entities' list")
    entities: list[Entity] = []
    seen: set[str] = set()
    for n, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise EntitiesFileError(f"{source}: entity #{n} is not an object")
        entity_id = entry.get("id")
        where = f"{source}: entity {entity_id!r}" if entity_id else f"{source}: entity #{n}"
        if not isinstance(entity_id, str) or not _ID.match(entity_id):
            raise EntitiesFileError(f"{where}: 'id' must be lower-case letters, digits and '-'")
        if entity_id in seen:
            raise EntitiesFileError(f"{where}: duplicate id")
        seen.add(entity_id)
        kind = entry.get("kind")
        if kind not in KINDS:
            raise EntitiesFileError(f"{where}: 'kind' must be one of {', '.join(KINDS)}")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise EntitiesFileError(f"{where}: 'name' must be a non-empty string")
        aliases = _strings(entry, "aliases", where)
        hashtags = _strings(entry, "hashtags", where)
        handles = _strings(entry, "handles", where)
        if not (aliases or hashtags or handles):
            raise EntitiesFileError(f"{where}: no alias, hashtag or handle: it could never match")
        note = entry.get("note", "")
        entities.append(
            Entity(
                id=entity_id,
                name=name.strip(),
                kind=kind,
                aliases=aliases,
                hashtags=hashtags,
                handles=handles,
                opensea_slugs=_strings(entry, "opensea_slugs", where),
                note=note if isinstance(note, str) else "",
            )
        )
    return EntityCatalog(entities)


def load_catalog(path: Path | str | None = None) -> EntityCatalog:
    """The catalog in `path` (JSON), or the shipped default when None."""
    file = Path(path) if path else DEFAULT_FILE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EntitiesFileError(f"cannot read entities file {file}: {exc.strerror}") from None
    except ValueError as exc:
        raise EntitiesFileError(f"entities file {file} is not valid JSON: {exc}") from None
    return parse_catalog(data, str(file))


_active: EntityCatalog | None = None


def use_catalog(catalog: EntityCatalog | None) -> None:
    """Make `catalog` the one `post_entities` uses (None: back to the configured file)."""
    global _active
    _active = catalog


def active_catalog() -> EntityCatalog:
    """The configured catalog (`MUSICNFT_ENTITIES_FILE` through the settings, else the shipped
    file), loaded once per process: every hot-path batch and batch-path window tags with it."""
    global _active
    if _active is None:
        from musicnft.settings import Settings

        _active = load_catalog(Settings.from_env().entities_file)
    return _active


def post_entities(post: Mapping[str, Any]) -> list[str]:
    """The ids of the entities `post` mentions, by the configured catalog."""
    return active_catalog().post_entities(post)


def with_entities(row: dict[str, Any]) -> dict[str, Any]:
    """`row` with its `entities` column set (the hot path's and the batch path's one call)."""
    row["entities"] = post_entities(row)
    return row
