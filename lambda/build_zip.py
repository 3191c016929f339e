"""`make lambda-zip`: the consumer's deployable bundle, `dist/lambda.zip`.

Contents: `handler.py` at the root (Lambda handler `handler.kinesis_handler`), the part of the core
package the handler imports (`LAMBDA_CORE`: contract, hot path, ports, settings, wiring, the
BigQuery adapter), vaderSentiment 3.3.2 with its lexicons (copied from this
project's locked environment), and google-cloud-bigquery with its whole dependency closure, because
the deployed consumer streams its rows into BigQuery.

Why the Google client is installed by pip here rather than copied from the venv: its closure is
binary (grpcio, cryptography, cffi, protobuf's upb, google-crc32c, charset-normalizer), and the
venv holds wheels for this machine's CPython. Lambda runs a specific CPython (`--python`, matching
the stack's `LambdaRuntime`: python3.11 or python3.12) on x86_64 Amazon Linux, so pip installs
wheels for exactly that target (`--platform manylinux2014_x86_64 --implementation cp
--python-version X.Y --only-binary=:all:`: glibc 2.17, which both runtimes' Amazon Linux exceed;
never an sdist compiled for the host). The versions are those of `requirements.lock` (given to pip
as constraints), and every distribution pip resolves must be pinned there at that exact version, or
the build fails: the Lambda runs the versions the tests ran. pip's download cache makes rebuilds
fast; the first build needs PyPI.

Not bundled, on purpose:
- boto3 and its dependencies (botocore, s3transfer, jmespath): the Lambda runtime provides them
  (the consumer uses boto3 only to read the BigQuery key from Secrets Manager). urllib3,
  python-dateutil and six *are* bundled (requests and the BigQuery client need them); from
  /var/task they shadow the runtime's copies, which botocore accepts (urllib3 < 3 on Python 3.10+).
- pyarrow, pandas, numpy, db-dtypes, google-cloud-bigquery-storage, DuckDB, Dagster: the streaming
  insert path never imports them (pyarrow is imported only where tables are read or loaded), and
  they would take the bundle past Lambda's size limits. They are optional extras of the BigQuery
  client, so pip does not resolve them; if one ever shows up in the closure, the build fails.
- console scripts (`bin/`), `__pycache__` and `.pyc` files (`--no-compile`): Lambda never runs
  them, and bytecode would make the zip depend on the build machine.

The zip is reproducible: entries sorted by name, fixed timestamps and modes (same inputs, same
bytes). The build prints the zipped and unzipped sizes and fails past Lambda's limits (50 MiB
zipped for a direct upload, 250 MiB unzipped).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
SKIP_DIRS = {"__pycache__", "data"}
FIXED_TIME = (2021, 12, 1, 0, 0, 0)  # reproducible zips: same inputs, same bytes

# What `handler.py` imports from the core package (a test checks the unpacked bundle runs the
# handler with nothing else on the path).
LAMBDA_CORE = (
    "__init__.py",
    "compiled.py",
    "settings.py",
    "logs.py",
    "ports.py",
    "wiring.py",
    "contract",
    "hotpath",
    "adapters/__init__.py",
    "adapters/bigquery/__init__.py",
    "adapters/bigquery/warehouse.py",
    # the promoted sentiment model is read from the lake on S3 (boto3: the runtime's)
    "adapters/s3_lake.py",
)
PYTHONS = ("3.11", "3.12")  # the Lambda runtimes infra/template.yaml allows (LambdaRuntime)
DEFAULT_PYTHON = "3.12"  # the template's default runtime
# Lambda x86_64 runs Amazon Linux 2 (python3.11, glibc 2.26) or 2023 (python3.12, glibc 2.34):
# manylinux2014 (glibc 2.17) wheels run on both. Both spellings, since pip matches tags literally
# and some wheels carry only one of them.
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64")
# What the bundle installs from the lock; pip resolves the rest of the closure.
BUNDLED_REQUIREMENTS = ("google-cloud-bigquery",)
# Must never reach the bundle (name → why). A dependency that starts requiring one of these is a
# decision to make by hand, so the build stops rather than silently growing or shadowing.
NOT_BUNDLED: dict[str, str] = {
    "boto3": "provided by the Lambda runtime",
    "botocore": "provided by the Lambda runtime",
    "s3transfer": "provided by the Lambda runtime",
    "jmespath": "provided by the Lambda runtime",
    "pyarrow": "too big; the streaming insert path does not import it",
    "pandas": "too big; the streaming insert path does not import it",
    "numpy": "too big; the streaming insert path does not import it",
    "db-dtypes": "pandas extension; only for DataFrame reads",
    "google-cloud-bigquery-storage": "Storage Read API for big reads; the consumer only inserts",
    "duckdb": "the embedded warehouse; the consumer writes to BigQuery",
    "dagster": "orchestration runs elsewhere",
}
ZIPPED_LIMIT = 50 * 1024 * 1024  # Lambda: a zip uploaded directly
UNZIPPED_LIMIT = 250 * 1024 * 1024  # Lambda: the unpacked function (layers included)


class BuildError(RuntimeError):
    """The bundle cannot be built as specified; the message says why and what to do."""


@dataclass(frozen=True)
class BuildResult:
    path: Path
    zipped_bytes: int
    unzipped_bytes: int
    python: str
    bundled: dict[str, str]  # distribution name → version installed from the lock


def normalize(name: str) -> str:
    """PEP 503 name normalization, so `Foo_Bar` in metadata matches `foo-bar` in the lock."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path = LOCK) -> dict[str, str]:
    """`name==version` pins of a `uv pip compile` lock (comments and `# via` lines ignored)."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if not text or text.startswith("-"):
            continue
        name, sep, version = text.partition("==")
        if sep:
            pins[normalize(name.split("[", 1)[0])] = version.split(";", 1)[0].strip()
    return pins


def closure_problems(resolved: Mapping[str, str], lock: Mapping[str, str]) -> list[str]:
    """Why the resolved set may not be bundled (empty: it may): a distribution that must stay
    out, one the lock does not pin, or one at another version than the lock's."""
    problems: list[str] = []
    for name, version in sorted(resolved.items()):
        key = normalize(name)
        if key in NOT_BUNDLED:
            problems.append(f"{name} must not be bundled ({NOT_BUNDLED[key]})")
        elif key not in lock:
            problems.append(f"{name} {version} is not in requirements.lock (re-lock: make lock)")
        elif lock[key] != version:
            problems.append(f"{name} resolved to {version}, but requirements.lock pins {lock[key]}")
    return problems


def install_dependencies(target: Path, python: str, lock_path: Path = LOCK) -> dict[str, str]:
    """pip-install the BigQuery client's closure for the Lambda target into `target`; returns the
    installed distributions (name → version), checked against the lock."""
    if python not in PYTHONS:
        raise BuildError(f"--python must be one of {', '.join(PYTHONS)}, got {python!r}")
    lock = read_lock(lock_path)
    missing = [r for r in BUNDLED_REQUIREMENTS if normalize(r) not in lock]
    if missing:
        raise BuildError(f"{', '.join(missing)} not pinned in {lock_path.name}")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar=off",
        "--target",
        str(target),
        *[arg for platform in PLATFORMS for arg in ("--platform", platform)],
        "--implementation=cp",
        f"--python-version={python}",
        "--only-binary=:all:",
        "--no-compile",
        "--constraint",
        str(lock_path),
        *[f"{r}=={lock[normalize(r)]}" for r in BUNDLED_REQUIREMENTS],
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        # pip's own output (the configured extra indexes make it chatty) only when it matters.
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise BuildError(
            f"pip could not install {', '.join(BUNDLED_REQUIREMENTS)} for the Lambda target "
            f"(CPython {python}, {PLATFORMS[0]}); the first build downloads wheels from PyPI, "
            f"is it reachable?\n$ {' '.join(cmd)}\n{tail}"
        )
    resolved = {normalize(d.metadata["Name"]): d.version for d in distributions(path=[str(target)])}
    problems = closure_problems(resolved, lock)
    if problems:
        raise BuildError(
            "the BigQuery client's closure cannot be bundled:\n  " + "\n  ".join(problems)
        )
    return dict(sorted(resolved.items()))


def _tree(
    src: Path, arc_root: str, skip_dirs: Iterable[str] = SKIP_DIRS, skip_top: Iterable[str] = ()
) -> dict[str, Path]:
    """Files under `src` by their name in the zip (`arc_root/...`, or at the root for ""),
    without directories named in `skip_dirs` (anywhere) or `skip_top` (directly under `src`)."""
    skip, top = set(skip_dirs), set(skip_top)
    files: dict[str, Path] = {}
    for path in src.rglob("*"):
        rel = path.relative_to(src)
        if path.is_dir() or skip.intersection(rel.parts) or path.suffix == ".pyc":
            continue
        if len(rel.parts) > 1 and rel.parts[0] in top:
            continue
        files[f"{arc_root}/{rel.as_posix()}" if arc_root else rel.as_posix()] = path
    return files


def core_files() -> dict[str, Path]:
    """The part of `musicnft/` the handler imports: the contract, the hot path, the ports, the
    settings and the composition root, and the BigQuery warehouse adapter it writes through. Not
    the CLI, the batch path, the local stand-ins, the dev tools or the sample."""
    files: dict[str, Path] = {}
    for rel in LAMBDA_CORE:
        src = ROOT / "musicnft" / rel
        if src.is_dir():
            # not this machine's Cython builds (make compiled): they are for its Python and
            # glibc; the bundle runs the same modules from their .py files, with the same results
            files.update(
                (arc, path)
                for arc, path in _tree(src, f"musicnft/{rel}").items()
                if path.suffix not in (".so", ".c")
            )
        else:
            files[f"musicnft/{rel}"] = src
    return files


def _write(zf: zipfile.ZipFile, arcname: str, path: Path) -> int:
    info = zipfile.ZipInfo(arcname, FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    # Lambda needs world-readable files; shared objects get the conventional x bit.
    shared = path.suffix == ".so" or ".so." in path.name
    info.external_attr = (0o755 if shared else 0o644) << 16
    data = path.read_bytes()
    zf.writestr(info, data)
    return len(data)


def build(out: Path, python: str = DEFAULT_PYTHON) -> BuildResult:
    import vaderSentiment

    with tempfile.TemporaryDirectory(prefix="lambda-deps-") as tmp:
        deps = Path(tmp)
        bundled = install_dependencies(deps, python)
        entries = {"handler.py": ROOT / "lambda" / "handler.py"}
        entries.update(core_files())
        entries.update(_tree(Path(vaderSentiment.__file__).parent, "vaderSentiment"))
        # pip's tree: packages at the root (as /var/task is on sys.path), without its scripts.
        third_party = _tree(deps, "", skip_dirs={"__pycache__"}, skip_top={"bin"})
        clashes = sorted(set(entries) & set(third_party))
        if clashes:
            raise BuildError(f"a dependency would overwrite project files: {clashes[:5]}")
        entries.update(third_party)

        out.parent.mkdir(parents=True, exist_ok=True)
        unzipped = 0
        with zipfile.ZipFile(out, "w") as zf:
            for arcname in sorted(entries):
                unzipped += _write(zf, arcname, entries[arcname])
    zipped = out.stat().st_size
    if zipped > ZIPPED_LIMIT or unzipped > UNZIPPED_LIMIT:
        raise BuildError(
            f"{out}: {_mib(zipped)} zipped / {_mib(unzipped)} unzipped exceeds Lambda's limits "
            f"({_mib(ZIPPED_LIMIT)} / {_mib(UNZIPPED_LIMIT)})"
        )
    return BuildResult(out, zipped, unzipped, python, bundled)


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="make lambda-zip",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", default=str(ROOT / "dist" / "lambda.zip"))
    parser.add_argument(
        "--python",
        choices=PYTHONS,
        default=DEFAULT_PYTHON,
        help="CPython of the Lambda runtime (LambdaRuntime python3.X); default %(default)s",
    )
    args = parser.parse_args()
    try:
        result = build(Path(args.out), args.python)
    except BuildError as exc:
        print(f"lambda-zip: {exc}", file=sys.stderr)
        return 1
    packages = ", ".join(f"{name} {version}" for name, version in result.bundled.items())
    print(
        f"{result.path}: {_mib(result.zipped_bytes)} zipped, {_mib(result.unzipped_bytes)} "
        f"unzipped (Lambda limits {_mib(ZIPPED_LIMIT)} / {_mib(UNZIPPED_LIMIT)}); "
        f"CPython {result.python} manylinux2014 x86_64\n"
        f"bundled ({len(result.bundled)}): {packages}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
