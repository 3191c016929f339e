"""The X stream message as a typed fast path reads it: msgspec structs of only the fields a post is
made of, typed as an ordinary message has them.

`normalize_x.fast_x_post` checks a line's bytes (`_standard_path_only`), decodes it with
`decode_struct` and builds the post exactly as `normalize_x_message(decode_line(raw), ...)` would,
or returns None whenever the line is anything but an ordinary, clean post: then the caller takes
the standard path, which stays the one definition of what a line means and of every rejection's
reason. (That code lives in normalize_x, which is compiled: see musicnft/compiled.py.)

Why it is safe to trust msgspec's reading when it succeeds (a parity test holds the two paths to
the same output over the sample, the hostile corpus and a fuzz of mutated lines):
- the line's bytes are valid UTF-8 (checked first: msgspec does not look inside skipped
  strings);
- msgspec refuses NaN, Infinity, lone-surrogate escapes, a BOM, trailing data and control
  characters, as the standard path does; duplicate keys keep the last value in both;
- the standard library refuses integers of more than `sys.get_int_max_str_digits()` digits,
  msgspec skips them: a line long enough to hold one goes through the standard path unless it has
  no digit run that long;
- nesting deeper than orjson's 1,024 levels is refused by the standard library (recursion limit),
  msgspec's limit is the interpreter's own: a line with that many brackets takes the standard path;
- every field is typed as the ordinary message has it (ids and texts strings, counts integers
  from 0 to 2**63 - 1, objects objects): any other type or count is a validation error, hence
  the standard path;
- a value the standard path would reject or change (an empty id, text over the limit, a timestamp
  out of range, a string or list beyond the schema's bounds) returns None.

Without msgspec installed (the Lambda bundle) there is no fast path: the result is the same.
"""

from __future__ import annotations

from typing import Annotated, Any

try:  # the Lambda bundle goes without: the standard path gives the same posts
    import msgspec
except ImportError:  # pragma: no cover - exercised by the Lambda bundle test
    msgspec = None  # type: ignore[assignment]


if msgspec is not None:
    # A count as the standard path keeps it (`_opt_int`: 0 <= n < 2**63); any other value, which
    # that path would null, is a validation error here, so the line takes that path.
    _Count = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]

    class _Metrics(msgspec.Struct, gc=False):
        repost_count: _Count | None = None
        retweet_count: _Count | None = None
        reply_count: _Count | None = None
        like_count: _Count | None = None
        quote_count: _Count | None = None

    class _Tag(msgspec.Struct, gc=False):
        tag: str | None = None

    class _Mention(msgspec.Struct, gc=False):
        username: str | None = None

    class _Url(msgspec.Struct, gc=False):
        url: str | None = None
        expanded_url: str | None = None

    class _Entities(msgspec.Struct, gc=False):
        hashtags: list[_Tag] | None = None
        cashtags: list[_Tag] | None = None
        mentions: list[_Mention] | None = None
        urls: list[_Url] | None = None

    class _Ref(msgspec.Struct, gc=False):
        type: str | None = None

    class _Data(msgspec.Struct, gc=False):
        id: str | None = None
        text: str | None = None
        created_at: str | None = None
        lang: str | None = None
        author_id: str | None = None
        public_metrics: _Metrics | None = None
        entities: _Entities | None = None
        referenced_tweets: list[_Ref] | None = None

    class _UserMetrics(msgspec.Struct, gc=False):
        followers_count: _Count | None = None

    class _User(msgspec.Struct, gc=False):
        id: str | None = None
        username: str | None = None
        verified: bool | None = None
        location: str | None = None
        public_metrics: _UserMetrics | None = None

    class _Includes(msgspec.Struct, gc=False):
        users: list[_User] | None = None

    class _Rule(msgspec.Struct, gc=False):
        id: str | None = None
        tag: str | None = None

    class _Message(msgspec.Struct, gc=False):
        data: _Data | None = None
        includes: _Includes | None = None
        matching_rules: list[_Rule] | None = None

    decode_struct: Any = msgspec.json.Decoder(_Message).decode
    DecodeError: type[Exception] = msgspec.DecodeError  # ValidationError is a subclass
else:  # pragma: no cover - exercised by the Lambda bundle test
    decode_struct = None
    DecodeError = ValueError
