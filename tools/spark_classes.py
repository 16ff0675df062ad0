"""`python tools/spark_classes.py`: the local Spark driver's class-data-sharing archive, built
once per virtualenv (`make test` and `make rehearse` build it when it is missing or older than
the pinned packages).

A local Spark session spends most of its first seconds loading and verifying some 10,000 JVM
classes: about 5 s to start and 5 s more for its first query, on a few hundred rows. A dynamic
CDS archive (JDK 13 and later, `-XX:ArchiveClassesAtExit`) holds those classes already parsed
and verified; a JVM started with `-XX:SharedArchiveFile` maps it and starts in about half the
time (measured here: session start and first query 12.6 s -> 6.3 s). The archive is built by
running every example product's transform on a few hundred rows, so it holds the classes the
tests and the rehearsal load (CSV, JSON and Parquet I/O, joins, windows, partitioned writes).

An archive that does not match the JVM or the class path (a JDK upgrade, other Spark jars) is
ignored by the JVM, which then loads its classes as usual: slower, never wrong
(https://docs.oracle.com/en/java/javase/17/vm/class-data-sharing.html, "-Xshare:auto", the
default).

A development tool, not shipped: it needs the test dependencies (pyspark, a Java runtime).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHIVE = Path(sys.prefix) / "spark-classes.jsa"
"""In the virtualenv, beside the Spark jars it was built from."""
ROWS = 200

DRIVER_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:CICompilerCount=1 -XX:+UseSerialGC"
"""A JVM for a few thousand rows: only the C1 compiler, garbage collected on one thread."""


def driver_java_options() -> str:
    """DRIVER_JAVA_OPTIONS, with the class archive when it has been built."""
    if ARCHIVE.is_file():
        return f"{DRIVER_JAVA_OPTIONS} -XX:SharedArchiveFile={ARCHIVE}"
    return DRIVER_JAVA_OPTIONS


def workload(archive: Path) -> None:
    """Every example product's curation on ROWS rows, in a JVM that writes the classes it
    loaded to `archive` when it exits; returns once it has exited."""
    sys.path.insert(0, str(ROOT))
    from mlgate.manifest import load_manifests
    from tools.local_pipeline import curate_locally, local_spark

    spark = local_spark(
        shuffle_partitions=1,
        **{
            "spark.driver.extraJavaOptions": (
                f"{DRIVER_JAVA_OPTIONS} -XX:ArchiveClassesAtExit={archive} "
                # Quiet about the classes CDS leaves out (signed jars, generated ones).
                "-Xlog:cds=off -Xlog:cds+dynamic=off"
            )
        },
    )
    with tempfile.TemporaryDirectory() as scratch:
        for manifest in load_manifests(ROOT / "examples"):
            out = Path(scratch) / manifest.product.name / "curated"
            curate_locally(spark.newSession(), manifest, out, rows=ROWS, seed=1)
    jvm = spark.sparkContext._gateway.proc
    spark.stop()
    # The JVM exits when its stdin closes (PySpark's gateway watches it) and writes the
    # archive on its way out.
    jvm.stdin.close()
    jvm.wait()


def main() -> int:
    """Builds ARCHIVE. A JVM that cannot (older than JDK 13) only costs speed: the old archive
    is removed, the reason printed, and the exit code is still 0."""
    partial = ARCHIVE.with_name(f"{ARCHIVE.name}.{os.getpid()}.partial")
    try:
        run = subprocess.run(
            [sys.executable, __file__, "--workload", str(partial)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0 or not partial.is_file():
            ARCHIVE.unlink(missing_ok=True)
            print(
                f"{run.stderr[-2000:]}\nspark_classes: no class archive (exit {run.returncode}); "
                "local Spark starts without one, slower",
                file=sys.stderr,
            )
            return 0
        partial.replace(ARCHIVE)
    finally:
        partial.unlink(missing_ok=True)
    print(f"spark_classes: {ARCHIVE} ({ARCHIVE.stat().st_size // 2**20} MiB)")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--workload"]:
        workload(Path(sys.argv[2]))
    else:
        sys.exit(main())
