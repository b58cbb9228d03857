"""Get a ``llama-server`` binary: an explicit path, a cached build, or a fresh build.

llama.cpp has no distribution package here, so the binary is built from the llama.cpp tree that
the ``llama-cpp-python`` sdist vendors (MIT, pinned below). Builds are cached outside the work
tree under a key made of the pinned version and the CMake flags, so CI on a warm machine and
every later run reuse them; ``SWITCHYARD_LLAMA_SERVER`` skips all of this.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
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


def cmake_flags(cuda: bool) -> tuple[str, ...]:
    return BASE_FLAGS + (("-DGGML_CUDA=ON",) if cuda else ())


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
    """Download the pinned sdist from the package registry and unpack its llama.cpp tree."""
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}",
            "-d",
            str(workdir),
        ]
    )
    sdist = next(workdir.glob("llama_cpp_python-*.tar.gz"))
    prefix = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}/vendor/llama.cpp/"
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        tar.extractall(workdir, members=members, filter="data")
    return workdir / prefix


def build(flags: tuple[str, ...], dest: Path) -> Path:
    """Configure and build the ``llama-server`` target only, then install it atomically."""
    jobs = str(os.cpu_count() or 2)
    with tempfile.TemporaryDirectory(prefix="switchyard-llama-") as tmp:
        src = _fetch_sources(Path(tmp))
        build_dir = Path(tmp) / "build"
        _run(["cmake", "-S", str(src), "-B", str(build_dir), *flags])
        _run(["cmake", "--build", str(build_dir), "--target", "llama-server", "-j", jobs])
        staged = dest.with_name(dest.name + ".partial")
        shutil.rmtree(staged, ignore_errors=True)
        (staged / "bin").mkdir(parents=True)
        shutil.copy2(build_dir / "bin" / "llama-server", staged / "bin" / "llama-server")
        (staged / "flags.txt").write_text("\n".join(flags) + "\n")
        shutil.rmtree(dest, ignore_errors=True)
        staged.rename(dest)
    return dest / "bin" / "llama-server"


def ensure_llama_server(build_if_missing: bool = True) -> Path:
    """Return a usable llama-server path: env override, then cache, then a build."""
    override = os.environ.get("SWITCHYARD_LLAMA_SERVER")
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise FileNotFoundError(f"SWITCHYARD_LLAMA_SERVER={override} is not an executable file")
        return path
    flags = cmake_flags(cuda_available())
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
    parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(ensure_llama_server())


if __name__ == "__main__":
    main()
