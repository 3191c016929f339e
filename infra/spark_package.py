"""Package the Spark scoring job for EMR Serverless (`make spark-package`): dist/spark/ holds

- `emr_entrypoint.py`: the script a job run starts (musicnft/spark/emr_entrypoint.py);
- `musicnft.zip`: the project's `musicnft` package, for `--py-files`;
- `pydeps.tar.gz`: the third-party libraries the job imports (and what they require), taken from
  the local virtualenv (offline), for `spark.archives=...#pydeps` with `PYTHONPATH=./pydeps` on the
  driver and the executors. pyspark and py4j are left out: EMR Serverless brings its own Spark.
- `manifest.json`: the libraries and versions, the Python and platform they were built for, each
  file's size and sha256, and the spark-submit parameters to use.

The libraries are the venv's own files (binary wheels for this CPython and platform: build on
x86_64 Linux with the Python the EMR release runs; docs/spark-emr-serverless.md). Archives are
reproducible: sorted members, fixed times and modes, gzip without a timestamp.

Usage: python infra/spark_package.py [--out dist/spark] [--python .venv/bin/python]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "musicnft"
ENTRY = PACKAGE / "spark" / "emr_entrypoint.py"
# What the driver and the executors import; modules imported only inside functions (the UDFs'
# scorers) are named here, since importing the job alone does not load them.
ROOT_MODULES = (
    "musicnft.spark.job",
    "musicnft.spark.emr_entrypoint",
    "dagster_pipes",
    "vaderSentiment.vaderSentiment",
    "pandas",
    "pyarrow",
    "numpy",
)
# Spark's own Python side: EMR Serverless provides it (and the versions must match its JVM).
PROVIDED = {"pyspark", "py4j"}
# Never packaged as a library: Spark's side, and the project itself (in musicnft.zip; its own
# distribution would drag in every dependency of the whole project).
SKIP_DISTS = PROVIDED | {"musicnft", "setuptools", "pip"}
FIXED_TIME = (2020, 1, 1, 0, 0, 0)
SKIP_PARTS = {"__pycache__"}

# Run by the target interpreter: which distributions the job's imports load, and their closure.
_PROBE = r"""
import importlib, importlib.metadata as md, json, sys
roots, skip = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
for name in roots:
    importlib.import_module(name)
top = {m.split(".")[0] for m in list(sys.modules)}
from packaging.requirements import Requirement
by_module = md.packages_distributions()
todo = sorted({d for m in top for d in by_module.get(m, [])})
seen = {}
while todo:
    name = todo.pop()
    key = name.lower().replace("_", "-")
    if key in seen or key in skip:
        continue
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        continue
    seen[key] = dist
    for raw in dist.requires or []:
        req = Requirement(raw)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            todo.append(req.name)
out = {}
for key, dist in seen.items():
    files = [[str(f), str(dist.locate_file(f))] for f in dist.files or []]
    out[key] = {"name": dist.metadata["Name"], "version": dist.version, "files": files}
import platform, sysconfig
print(json.dumps({"dists": out, "python": platform.python_version(),
                  "platform": sysconfig.get_platform(),
                  "site": sysconfig.get_paths()["purelib"]}))
"""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _keep(rel: Path) -> bool:
    return not (set(rel.parts) & SKIP_PARTS) and rel.suffix not in (".pyc", ".pyo")


def _keep_code(rel: Path) -> bool:
    """Local Cython builds (make compiled) are for this machine's Python and cannot load from a
    zip: the package ships its .py files, which give the same results."""
    return _keep(rel) and rel.suffix not in (".so", ".c") and rel.name != "compiled_sources.json"


def build_code_zip(out: Path) -> Path:
    """`musicnft.zip`: every file of the `musicnft` package (code and package data) at the zip's
    root, so `--py-files` puts `musicnft` on the path."""
    target = out / "musicnft.zip"
    files = sorted(
        p for p in PACKAGE.rglob("*") if p.is_file() and _keep_code(p.relative_to(PACKAGE.parent))
    )
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            info = zipfile.ZipInfo(str(path.relative_to(PACKAGE.parent)), FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    return target


def probe_dependencies(python: str, roots: tuple[str, ...] = ROOT_MODULES) -> dict:
    """The third-party distributions (name, version, files) importing `roots` loads, with
    everything they require, as seen by `python` (the venv's interpreter)."""
    proc = subprocess.run(
        [python, "-c", _PROBE, json.dumps(list(roots)), json.dumps(sorted(SKIP_DISTS))],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise SystemExit(f"spark-package: importing the job failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def build_deps_archive(out: Path, probe: dict) -> Path:
    """`pydeps.tar.gz`: the distributions' installed files, relative to site-packages (their
    scripts outside it are left out), so the unpacked folder is a PYTHONPATH entry."""
    site = Path(probe["site"]).resolve()
    members: dict[str, Path] = {}
    for dist in probe["dists"].values():
        for _rel, located in dist["files"]:
            path = Path(located).resolve()
            if not path.is_file() or not path.is_relative_to(site):
                continue
            arc = path.relative_to(site)
            if _keep(arc):
                members[str(arc)] = path
    target = out / "pydeps.tar.gz"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for arc in sorted(members):
            data = members[arc].read_bytes()
            info = tarfile.TarInfo(arc)
            info.size = len(data)
            info.mtime = 1577836800
            info.mode = 0o755 if members[arc].stat().st_mode & 0o111 else 0o644
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    with (
        target.open("wb") as fh,
        gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, compresslevel=6) as gz,
    ):
        gz.write(raw.getvalue())
    return target


def build(out: Path, python: str = sys.executable) -> dict:
    """Build dist/spark/ into `out` (emptied first); returns the manifest."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    entry = out / ENTRY.name
    shutil.copyfile(ENTRY, entry)
    code = build_code_zip(out)
    probe = probe_dependencies(python)
    deps = build_deps_archive(out, probe)
    manifest = {
        "python": probe["python"],
        "platform": probe["platform"],
        "libraries": {d["name"]: d["version"] for d in probe["dists"].values()},
        "provided_by_emr": sorted(PROVIDED),
        "files": {
            p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in (entry, code, deps)
        },
        "spark_submit_parameters": (
            "--py-files <artifacts>/musicnft.zip "
            "--conf spark.archives=<artifacts>/pydeps.tar.gz#pydeps "
            "--conf spark.emr-serverless.driverEnv.PYTHONPATH=./pydeps "
            "--conf spark.executorEnv.PYTHONPATH=./pydeps"
        ),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "spark")
    parser.add_argument("--python", default=sys.executable, help="the venv's interpreter")
    args = parser.parse_args(argv)
    manifest = build(args.out, args.python)
    for name, info in manifest["files"].items():
        print(f"{args.out / name}  {info['bytes']:,} bytes  sha256 {info['sha256'][:16]}")
    print(
        f"{len(manifest['libraries'])} libraries for Python {manifest['python']} "
        f"({manifest['platform']}): {', '.join(sorted(manifest['libraries']))}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
