"""`python tools/wheels.py build|lock [SET ...]`: the wheel sets mlgate ships
(mlgate/infra/wheelsets.py).

build (`make wheels`, part of `make setup`): for each set whose packed zip is not in the cache
yet, download its locked wheels for the set's target with pip, checking every hash (`pip
download --require-hashes --no-deps --only-binary=:all: --platform ... --python-version ...
--implementation cp`), then pack them: the Powertools layer is installed from those wheels,
offline, into Lambda's `python/` layout (https://docs.aws.amazon.com/lambda/latest/dg/
packaging-layers.html); the monitoring wheelhouse is the wheels themselves. The zip is written
whole or not at all, under the set's key; zips of older keys are removed. A built set costs
nothing: no network, no pip.

lock (needs the network, and the test dependencies for `powertools`): resolve a set's pins for
its target and write its lock with the sha256 of each chosen wheel (pip's installation report:
https://pip.pypa.io/en/stable/reference/installation-report/). `monitoring` locks
requirements-monitoring.txt and refuses a closure that needs a package it does not pin;
`powertools` locks aws-lambda-powertools at requirements-dev.txt's pin (with
mlgate.infra.wheelsets.POWERTOOLS_EXTRAS), its dependencies held to the versions installed in this
virtualenv, the ones the tests run.

A development tool, not shipped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mlgate.infra.wheelsets import (  # noqa: E402
    CACHE,
    POWERTOOLS_EXTRAS,
    SETS,
    WheelSet,
    canonical,
    dev_pin,
    pins,
)

FIXED_TIME = (2020, 1, 1, 0, 0, 0)
LAYER_SKIPPED = {"bin"}
"""Left out of the layer: console scripts (their first line names this machine's Python)."""
LAYER_MOUNT = "/opt/python"
"""Where Lambda mounts a layer's python/ folder (https://docs.aws.amazon.com/lambda/latest/dg/
packaging-layers.html#packaging-layers-paths): the path the layer's bytecode records."""


def runtime_python(wheel_set: WheelSet) -> str | None:
    """This machine's interpreter of the set's Python version, which alone writes bytecode the
    runtime reads (a .pyc carries its interpreter's magic number and cache tag): on PATH, or
    installed by pyenv (whose shim on PATH answers only for the selected versions)."""
    name = f"python{wheel_set.python}"
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    candidates = [
        shutil.which(name),
        *map(str, sorted(pyenv.glob(f"{wheel_set.python}.*/bin/{name}"))),
    ]
    for candidate in filter(None, candidates):
        answer = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if answer.returncode == 0 and answer.stdout.strip() == wheel_set.python:
            return candidate
    return None


def compile_layer(wheel_set: WheelSet, layer: Path) -> bool:
    """Ships the layer's bytecode, compiled by the runtime's Python version.

    Lambda mounts a layer read-only at /opt: without bytecode in the layer, every cold start
    compiles each module it imports from source and cannot keep the result. Measured here
    (bench/hooks_latency.py --runtime): the deployer's import takes 0.49 s from a layer of
    sources against 0.22 s with this bytecode. Unchecked-hash pycs (PEP 552:
    https://docs.python.org/3/library/compileall.html, --invalidation-mode) are used without
    a look at the sources' mtimes, which a zip does not keep anyway. Without that Python on
    this machine the layer ships sources only (the same code, slower to start) and says so."""
    python = runtime_python(wheel_set)
    if python is None:
        print(f"tools/wheels.py: no python{wheel_set.python} on PATH: the {wheel_set.name} layer "
              "ships no bytecode (its hooks compile their imports at each cold start)",
              file=sys.stderr)  # fmt: skip
        return False
    subprocess.run(
        [python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
         "-s", str(layer), "-p", LAYER_MOUNT, str(layer)],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return True


def pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def target_flags(wheel_set: WheelSet) -> list[str]:
    """Wheels for the set's target, whatever this machine is."""
    flags = ["--only-binary=:all:", "--implementation", "cp", "--python-version", wheel_set.python]
    for platform in wheel_set.platforms:
        flags += ["--platform", platform]
    return flags


def build(wheel_set: WheelSet) -> Path:
    """The set's zip, downloaded and packed when it is not in the cache."""
    out = wheel_set.zip_path
    if out.is_file():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{wheel_set.name}-", dir=CACHE) as work:
        wheels = Path(work) / "wheels"
        pip(
            "download", "--quiet", "--no-deps", "--require-hashes", *target_flags(wheel_set),
            "--dest", str(wheels), "-r", str(wheel_set.lock),
        )  # fmt: skip
        downloaded = sorted(wheels.glob("*.whl"))
        if len(downloaded) != len(wheel_set.wheels):
            raise SystemExit(f"{wheel_set.name}: pip downloaded {len(downloaded)} wheels for "
                             f"{len(wheel_set.wheels)} locked requirements")  # fmt: skip
        partial = Path(work) / out.name
        if wheel_set.layout == "layer":
            layer = Path(work) / "layer" / "python"
            # Offline, from the files just checked, for the runtime's Python and platform.
            pip(
                "install", "--isolated", "--quiet", "--no-index", "--find-links", str(wheels),
                "--no-deps", "--require-hashes", "--no-compile", *target_flags(wheel_set),
                "--target", str(layer), "-r", str(wheel_set.lock),
            )  # fmt: skip
            compile_layer(wheel_set, layer)
            files = {
                f"python/{p.relative_to(layer)}": p
                for p in layer.rglob("*")
                if p.is_file() and not LAYER_SKIPPED.intersection(p.relative_to(layer).parts)
            }
            write_zip(files, partial, zipfile.ZIP_DEFLATED)
        else:
            # Wheels are compressed already: stored, the job unpacks them in a moment.
            write_zip({p.name: p for p in downloaded}, partial, zipfile.ZIP_STORED)
        partial.replace(out)
    for old in CACHE.glob(f"{wheel_set.name}-*.zip"):
        if old != out:
            old.unlink()
    return out


def missing_bytecode(archive: Path, python: str) -> list[str]:
    """The layer's modules without unchecked-hash bytecode for CPython `python` ("3.13"): each
    python/**/x.py needs python/**/__pycache__/x.cpython-313.pyc whose header says hash-based,
    unchecked (flags 0b01: https://peps.python.org/pep-0552/)."""
    tag = f"cpython-{python.replace('.', '')}"
    with zipfile.ZipFile(archive) as layer:
        names = set(layer.namelist())
        missing = []
        for name in sorted(n for n in names if n.endswith(".py")):
            folder, _, module = name.rpartition("/")
            pyc = f"{folder}/__pycache__/{module[:-3]}.{tag}.pyc"
            if pyc not in names:
                missing.append(name)
            elif int.from_bytes(layer.read(pyc)[4:8], "little") != 0b01:
                missing.append(f"{name} (its bytecode checks the source's mtime or hash)")
    return missing


def write_zip(files: dict[str, Path], out: Path, compression: int) -> None:
    """`files` (name in the zip -> file), sorted, with fixed times and modes."""
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = compression
            with files[name].open("rb") as source, archive.open(info, "w") as target:
                shutil.copyfileobj(source, target, 1 << 20)


def lock(wheel_set: WheelSet) -> None:
    """Resolve the set for its target and write its lock (pins and hashes)."""
    with tempfile.TemporaryDirectory() as work:
        report = Path(work) / "report.json"
        if wheel_set.name == "powertools":
            extras = f"[{','.join(POWERTOOLS_EXTRAS)}]" if POWERTOOLS_EXTRAS else ""
            tested = Path(work) / "tested.txt"
            tested.write_text(
                "".join(
                    f"{d.metadata['Name']}=={d.version}\n"
                    for d in metadata.distributions()
                    if d.metadata["Name"]
                )
            )
            inputs = [f"aws-lambda-powertools{extras}=={dev_pin('aws-lambda-powertools')}"]
            inputs += ["-c", str(tested)]
        else:
            inputs = ["-r", str(ROOT / wheel_set.source)]
        pip(
            "install", "--quiet", "--dry-run", "--ignore-installed", "--report", str(report),
            *target_flags(wheel_set), "--target", str(Path(work) / "target"), *inputs,
        )  # fmt: skip
        chosen = json.loads(report.read_text())["install"]
    locked = sorted(chosen, key=lambda item: canonical(item["metadata"]["name"]))
    if wheel_set.layout == "wheelhouse":
        wanted = pins(ROOT / wheel_set.source)
        got = {canonical(i["metadata"]["name"]): i["metadata"]["version"] for i in locked}
        if got != wanted:
            extra = sorted(f"{n}=={v}" for n, v in got.items() if wanted.get(n) != v)
            raise SystemExit(
                f"{wheel_set.source} is not the whole closure for {wheel_set.target}: pin "
                f"{', '.join(extra)}"
            )
    names = {canonical(n): n for n in _source_names(wheel_set)}
    header = (
        f"The {wheel_set.name} wheel set (mlgate/infra/wheelsets.py): {wheel_set.source}. "
        f"Locked for {wheel_set.target}. Written by "
        f"`python tools/wheels.py lock {wheel_set.name}`; do not edit by hand."
    )
    lines = textwrap.wrap(header, width=98, initial_indent="# ", subsequent_indent="# ")
    for item in locked:
        name = item["metadata"]["name"]
        digest = item["download_info"]["archive_info"]["hashes"]["sha256"]
        lines.append(
            f"{names.get(canonical(name), canonical(name))}=={item['metadata']['version']} \\"
        )
        lines.append(f"    --hash=sha256:{digest}")
    wheel_set.lock.write_text("\n".join(lines) + "\n")


def _source_names(wheel_set: WheelSet) -> list[str]:
    """Project names as the set's source spells them (requirements-monitoring.txt's)."""
    if wheel_set.layout != "wheelhouse":
        return []
    source = (ROOT / wheel_set.source).read_text().splitlines()
    return [line.split("==")[0] for line in source if "==" in line and not line.startswith("#")]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=["build", "lock"])
    parser.add_argument("sets", nargs="*", metavar="SET", help=f"{', '.join(SETS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.sets) - set(SETS))
    if unknown:
        parser.error(f"no wheel set {', '.join(unknown)}; the sets are {', '.join(SETS)}")
    for name in args.sets or list(SETS):
        wheel_set = SETS[name]
        if args.command == "lock":
            lock(wheel_set)
            print(f"{wheel_set.lock.name}: {len(wheel_set.lock.read_text().splitlines())} lines")
        else:
            path = build(wheel_set)
            print(f"{name}: {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
