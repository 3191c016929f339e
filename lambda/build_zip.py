"""`make lambda-zip`: the consumer's deployable bundle, `dist/lambda.zip`.

Contents: `handler.py` at the root (Lambda handler `handler.kinesis_handler`), the core package
`musicnft/` (without the shipped sample), and vaderSentiment 3.3.2 with its lexicons, copied from
this project's locked environment. Nothing heavy: no Dagster, pandas, pyarrow or DuckDB; the core
imports pyarrow only where Parquet is written, which the consumer never does. (The warehouse the
deployed consumer writes to, BigQuery, brings its client library with its own issue.)
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {"__pycache__", "data"}
FIXED_TIME = (2021, 12, 1, 0, 0, 0)  # reproducible zips: same inputs, same bytes


def _add_tree(zf: zipfile.ZipFile, src: Path, arc_root: str) -> None:
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if path.is_dir() or any(part in SKIP_DIRS for part in rel.parts) or path.suffix == ".pyc":
            continue
        info = zipfile.ZipInfo(f"{arc_root}/{rel.as_posix()}", FIXED_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        zf.writestr(info, path.read_bytes())


def build(out: Path) -> Path:
    import vaderSentiment

    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w") as zf:
        info = zipfile.ZipInfo("handler.py", FIXED_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        zf.writestr(info, (ROOT / "lambda" / "handler.py").read_bytes())
        _add_tree(zf, ROOT / "musicnft", "musicnft")
        _add_tree(zf, Path(vaderSentiment.__file__).parent, "vaderSentiment")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(prog="make lambda-zip", description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "dist" / "lambda.zip"))
    args = parser.parse_args()
    path = build(Path(args.out))
    print(f"{path} ({path.stat().st_size / 1e6:.2f} MB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
