"""The command line a platform engineer meets first: validate, and a bad manifest in cdk synth."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlgate.cli.commands import main
from mlgate.manifest import load_manifests

from .conftest import DEFAULT_MANIFEST, EXAMPLES, ROOT


def test_validate_prints_the_one_pager(capsys: object) -> None:
    assert main(["validate", str(DEFAULT_MANIFEST)]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "Card fraud detection (fraud-detection)" in out
    assert "1. model-review [model_registry] Bruno Okafor; times out after 72 h" in out
    assert "2. quality-gate [after_staging] automated" in out
    assert "5. go-live [before_prod] Emeka Nwosu, Alice Moreau; times out after 24 h" in out
    assert "RICE score: 533,333.3" in out
    assert "R1 score 16: Concept drift" in out
    assert (
        "environments: staging 111111111111 eu-west-1 (home); "
        "prod 111111111111 eu-west-1 (home account)" in out
    )


def test_validate_says_when_prod_has_its_own_account(capsys: object) -> None:
    remote = next(m for m in load_manifests(EXAMPLES) if m.is_remote("prod"))
    assert main(["validate", str(remote.folder)]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    prod = remote.environments.prod
    assert (
        f"prod {prod.account} {prod.region} (its own account: the release pipeline deploys "
        "through its roles)" in out
    )


def _bad_manifest(tmp_path: Path) -> Path:
    doc = yaml.safe_load(DEFAULT_MANIFEST.read_text())
    doc["environments"]["prod"]["acount"] = doc["environments"]["prod"].pop("account")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_validate_rejects_a_bad_manifest_with_one_line_per_problem(
    tmp_path: Path, capsys: object
) -> None:
    path = _bad_manifest(tmp_path)
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert err.splitlines() == [
        f"{path}: environments.prod.acount: unknown key 'acount'; did you mean 'account'?"
    ]


def test_synth_of_a_bad_manifest_stops_before_anything_is_written(tmp_path: Path) -> None:
    path = _bad_manifest(tmp_path)
    outdir = tmp_path / "cdk.out"
    env = {**os.environ, "CDK_OUTDIR": str(outdir), "CDK_CONTEXT_JSON": f'{{"manifest": "{path}"}}'}
    run = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert "environments.prod.acount: unknown key 'acount'" in run.stderr
    assert not outdir.exists()


def test_the_manifest_reference_page_is_current() -> None:
    from mlgate.manifest.reference import BEGIN, END, manifest_reference

    readme = (ROOT / "docs" / "manifest-reference.md").read_text()
    section = readme[readme.index(BEGIN) + len(BEGIN) : readme.index(END)]
    assert section.strip() == manifest_reference().strip(), (
        "docs/manifest-reference.md is stale: run "
        "`python -m mlgate reference --write docs/manifest-reference.md`"
    )


def test_every_reference_table_row_is_one_line() -> None:
    from mlgate.manifest.reference import manifest_reference

    tables = [b for b in manifest_reference().split("\n\n") if "|---|" in b]
    assert len(tables) > 10
    broken = [
        line
        for table in tables
        for line in table.strip().splitlines()
        if not (line.startswith("|") and line.endswith("|"))
    ]
    assert broken == []


def test_a_failed_synth_is_never_reported_as_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Templates left by a synth whose cdk-nag validation failed are refused by the report
    and the dashboard preview, naming why."""
    (tmp_path / "mlgate-x-data.template.json").write_text('{"Resources": {}}')
    (tmp_path / "validation-report.json").write_text(
        '{"pluginReports": [{"pluginName": "AwsSolutions", "conclusion": "failure", '
        '"violations": [{}, {}]}]}'
    )
    assert main(["report", str(DEFAULT_MANIFEST), "--outdir", str(tmp_path)]) == 1
    assert "failed its validation (AwsSolutions: 2 violation(s))" in capsys.readouterr().err
    assert main(["dashboards", "--outdir", str(tmp_path), "--out", str(tmp_path / "d")]) == 1
    assert "failed its validation" in capsys.readouterr().err


# What a README command may import depends on what its make target installs: `make synth`
# installs requirements.txt (and the SageMaker SDK), the test set requirements-dev.txt.
MAKE_COMMANDS = {
    "validate": ["validate", str(EXAMPLES)],
    "dashboards": ["dashboards", "--outdir", "{outdir}", "--out", "{tmp}/dashboards"],
    "report": ["report", str(EXAMPLES), "--outdir", "{outdir}", "--out", "{tmp}/reports"],
    # Real accounts: with no credentials here it says so in one line (exit 2).
    "preflight": ["preflight", str(EXAMPLES)],
}
BLOCK_DEV_ONLY = """
import importlib.abc, sys
blocked = set(sys.argv[1].split(","))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (not installed by this target)")
sys.meta_path.insert(0, Block())
sys.argv = ["mlgate", *sys.argv[2:]]
from mlgate.cli.commands import main
raise SystemExit(main(sys.argv[1:]))
"""


def make_prerequisites(target: str) -> str:
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith(f"{target}:"):
            return line.split(":", 1)[1].split("##")[0]
    raise AssertionError(f"the Makefile has no target {target}")


def dev_only_modules() -> set[str]:
    """Top-level modules of the packages requirements-dev.txt adds to requirements.txt."""
    from importlib.metadata import packages_distributions

    def names(path: str) -> set[str]:
        lines = (ROOT / path).read_text().splitlines()
        return {
            line.split("==")[0].split("[")[0].strip().lower().replace("_", "-")
            for line in lines
            if line.strip() and not line.startswith(("#", "-"))
        }

    extra = names("requirements-dev.txt") - names("requirements.txt")
    return {
        module
        for module, dists in packages_distributions().items()
        if any(d.lower().replace("_", "-") in extra for d in dists) and module.isidentifier()
    }


@pytest.mark.parametrize("target", sorted(MAKE_COMMANDS))
def test_a_make_command_runs_with_what_its_target_installs(
    target: str, synth: object, tmp_path: Path
) -> None:
    """`make report` right after `make synth` on a fresh clone failed on cfnlint, a test
    dependency: each command either runs with only the synth set-up, or its target installs the
    test set first."""
    if "$(STAMPS)/dev" in make_prerequisites(target) or "setup-dev" in make_prerequisites(target):
        return
    blocked = dev_only_modules()
    assert "cfnlint" in blocked
    assert "moto" in blocked
    outdir = str(synth.outdir)  # type: ignore[attr-defined]
    args = [a.format(outdir=outdir, tmp=tmp_path) for a in MAKE_COMMANDS[target]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    run = subprocess.run(
        [sys.executable, "-c", BLOCK_DEV_ONLY, ",".join(sorted(blocked)), *args],
        cwd=ROOT,
        env={**env, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "ModuleNotFoundError" not in run.stderr + run.stdout, (target, run.stderr[-2000:])
    assert run.returncode in ((0, 2) if target == "preflight" else (0,)), run.stderr[-2000:]
