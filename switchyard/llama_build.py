"""Get a ``llama-server`` binary: an explicit path, a cached build, or a fresh build.

llama.cpp has no distribution package here, so the binary is built from the llama.cpp tree that
the ``llama-cpp-python`` sdist vendors (MIT, pinned below). Builds are cached outside the work
tree under a key made of the pinned version and the CMake flags, so CI on a warm machine and
every later run reuse them; ``SWITCHYARD_LLAMA_SERVER`` skips all of this.

The engine-llamacpp image builds the same way (deploy/docker/Dockerfile, ``--out``), and can take
a build made here instead of compiling again (``--reuse``): llama.cpp is then compiled once on a
machine. A build is reused only when it is the same build, the pinned version with the same
CMake flags (``flags.txt``), and its binary runs where it is reused.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import ssl
import subprocess
import tarfile
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

logger = logging.getLogger(__name__)

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
# The vendored tree carries no git metadata; record the pin so `--version` says what was built.
BUILD_LABEL = f"llama-cpp-python-{LLAMA_CPP_PYTHON_VERSION}"

BASE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DGGML_NATIVE=ON",
    "-DLLAMA_BUILD_NUMBER=0",
    f"-DLLAMA_BUILD_COMMIT={BUILD_LABEL}",
)


def cuda_available() -> bool:
    """True when a CUDA toolkit and a driver are both present (build with -DGGML_CUDA=ON)."""
    return shutil.which("nvcc") is not None and shutil.which("nvidia-smi") is not None


# For an image that runs on other machines than the one building it: no -march=native, but the
# x86-64-v3 level (AVX2, FMA, F16C) that every x86 host of this project has (ignored elsewhere).
PORTABLE_FLAGS = ("-DGGML_NATIVE=OFF", "-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON")


def cmake_flags(cuda: bool, portable: bool = False) -> tuple[str, ...]:
    flags = tuple(f for f in BASE_FLAGS if not (portable and f.startswith("-DGGML_NATIVE=")))
    return flags + (PORTABLE_FLAGS if portable else ()) + (("-DGGML_CUDA=ON",) if cuda else ())


def cache_root() -> Path:
    base = os.environ.get("SWITCHYARD_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "switchyard"
    )
    return Path(base)


def cache_dir(flags: tuple[str, ...]) -> Path:
    key = hashlib.sha256("\n".join(flags).encode()).hexdigest()[:12]
    return cache_root() / "llama-server" / f"{LLAMA_CPP_PYTHON_VERSION}-{key}"


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    logger.info("+ %s", " ".join(cmd))
    subprocess.run(cmd, cwd=cwd, check=True)


def _fetch_sources(workdir: Path) -> Path:
    """Download the pinned sdist from the package index, check its hash, unpack its llama.cpp tree.

    Not ``pip download``: preparing an sdist's metadata under ``--no-binary :all:`` builds every
    build dependency from source, CMake included. The index's JSON API (PEP 691) gives the file's
    URL and sha256; ``PIP_INDEX_URL`` and ``PIP_CERT`` are honoured as pip would.
    """
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/") + "/llama-cpp-python/"
    cafile = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE") or None
    context = ssl.create_default_context(cafile=cafile)
    sdist_name = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}.tar.gz"
    listing = urllib.request.Request(index, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    logger.info("+ fetch %s from %s", sdist_name, index)
    with urllib.request.urlopen(listing, context=context, timeout=60) as answer:
        entry = next(f for f in json.load(answer)["files"] if f["filename"] == sdist_name)
    sdist = workdir / sdist_name
    digest = hashlib.sha256()
    url = urllib.parse.urljoin(index, entry["url"])
    with urllib.request.urlopen(url, context=context, timeout=60) as answer, sdist.open("wb") as out:
        while chunk := answer.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != entry["hashes"]["sha256"]:
        raise RuntimeError(f"{sdist_name}: sha256 {digest.hexdigest()} is not the index's {entry['hashes']['sha256']}")
    prefix = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}/vendor/llama.cpp/"
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        # The "data" filter (no links out, no devices) where this Python has it (3.11.4+); the
        # archive's hash was checked above either way.
        if hasattr(tarfile, "data_filter"):
            tar.extractall(workdir, members=members, filter="data")
        else:
            tar.extractall(workdir, members=members)
    return workdir / prefix


def build(flags: tuple[str, ...], dest: Path) -> Path:
    """Configure and build the ``llama-server`` target only, then install it atomically."""
    jobs = str(os.cpu_count() or 2)
    with tempfile.TemporaryDirectory(prefix="switchyard-llama-") as tmp:
        src = _fetch_sources(Path(tmp))
        build_dir = Path(tmp) / "build"
        _run(["cmake", "-S", str(src), "-B", str(build_dir), *flags])
        _run(["cmake", "--build", str(build_dir), "--target", "llama-server", "-j", jobs])
        return _install(build_dir / "bin" / "llama-server", flags, dest)


def _install(binary: Path, flags: tuple[str, ...], dest: Path) -> Path:
    """Put ``bin/llama-server`` and ``flags.txt`` (what it was built with) in dest, atomically."""
    staged = dest.with_name(dest.name + ".partial")
    shutil.rmtree(staged, ignore_errors=True)
    (staged / "bin").mkdir(parents=True)
    shutil.copy2(binary, staged / "bin" / "llama-server")
    (staged / "flags.txt").write_text("\n".join(flags) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    staged.rename(dest)
    return dest / "bin" / "llama-server"


def reuse_problem(folder: Path, accepted: tuple[tuple[str, ...], ...]) -> str | None:
    """Why the build in folder (``bin/llama-server``, ``flags.txt``, as :func:`build` leaves it)
    cannot stand in for a build here, or None when it can: it was built with one of the accepted
    flag sets (which name the pinned version) and its binary runs here (C and C++ runtimes and
    libgomp new enough) and reports the pinned build."""
    binary, recorded = folder / "bin" / "llama-server", folder / "flags.txt"
    if not binary.is_file() or not recorded.is_file():
        return f"{folder} holds no build (no bin/llama-server and flags.txt)"
    flags = tuple(recorded.read_text().split())
    if flags not in accepted:
        differ = sorted(set(flags).symmetric_difference(accepted[0]))
        return f"it was built with other CMake flags than this build's ({' '.join(differ)})"
    try:
        ran = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"its llama-server does not run here: {exc}"
    said = (ran.stderr + ran.stdout).strip()
    if ran.returncode != 0:
        last = said.splitlines()[-1] if said else ""
        return f"its llama-server does not run here (exit code {ran.returncode}): {last}"
    if f"commit {BUILD_LABEL}" not in said:
        return f"its llama-server is not the pinned build {BUILD_LABEL}: {said.splitlines()[0] if said else ''}"
    return None


def reuse_or_build(prebuilt: Path, flags: tuple[str, ...], dest: Path, also: tuple[tuple[str, ...], ...] = ()) -> Path:
    """Install the build in prebuilt when :func:`reuse_problem` finds none, else build flags."""
    problem = reuse_problem(prebuilt, (flags, *also))
    if problem is None:
        logger.info("reusing the llama-server build in %s (no compile)", prebuilt)
        recorded = tuple((prebuilt / "flags.txt").read_text().split())
        return _install(prebuilt / "bin" / "llama-server", recorded, dest)
    logger.info("not reusing %s: %s; building llama-server %s (takes minutes)", prebuilt, problem, BUILD_LABEL)
    return build(flags, dest)


def ensure_llama_server(build_if_missing: bool = True, portable: bool = False) -> Path:
    """Return a usable llama-server path: env override, then cache, then a build (``portable``:
    the cached build without -march=native, the one an image to ship can reuse)."""
    override = os.environ.get("SWITCHYARD_LLAMA_SERVER")
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise FileNotFoundError(f"SWITCHYARD_LLAMA_SERVER={override} is not an executable file")
        return path
    flags = cmake_flags(cuda_available(), portable)
    binary = cache_dir(flags) / "bin" / "llama-server"
    if binary.is_file():
        return binary
    if not build_if_missing:
        raise FileNotFoundError(f"llama-server not built yet (expected at {binary})")
    logger.info("building llama-server %s into %s (takes minutes, once)", BUILD_LABEL, binary)
    return build(flags, cache_dir(flags))


def binary_version(binary: Path) -> str:
    """The first line of ``llama-server --version`` (it prints to stderr)."""
    result = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False)
    lines = (result.stderr + result.stdout).strip().splitlines()
    version = next((line for line in lines if line.startswith("version:")), "")
    return "llama-server " + version.removeprefix("version:").strip() if version else "llama-server"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, help="build into this folder (bin/llama-server) instead of the cache")
    parser.add_argument("--portable", action="store_true", help="no -march=native: for images run elsewhere")
    parser.add_argument(
        "--reuse",
        type=Path,
        metavar="DIR",
        help="with --out: install the build in DIR (as this script leaves it: bin/llama-server, flags.txt) "
        "instead of compiling, when it is this build and runs here; otherwise say why and compile",
    )
    parser.add_argument(
        "--reuse-native",
        action="store_true",
        help="with --portable --reuse: also take a -march=native build of this version "
        "(what `make llama-server` makes); it runs only on CPUs like the one that built it",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.reuse is not None and args.out is None:
        parser.error("--reuse needs --out")
    if args.out is None:
        print(ensure_llama_server(portable=args.portable))
        return
    # The container build (deploy/docker/Dockerfile): the standard library only, no cache.
    cuda = cuda_available()
    flags = cmake_flags(cuda, args.portable)
    if args.reuse is None:
        print(build(flags, args.out))
        return
    also = (cmake_flags(cuda),) if args.reuse_native else ()
    print(reuse_or_build(args.reuse, flags, args.out, also))


if __name__ == "__main__":
    main()
