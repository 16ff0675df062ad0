"""Command line: validate a manifest, summarize a synthesized app."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from mlgate.cli.estimate import estimate, summary_lines
from mlgate.manifest import (
    ENV_NAMES,
    GateKind,
    Manifest,
    ManifestBatchError,
    load_manifests,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlgate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    validate = sub.add_parser("validate", help="check manifests and print each one-pager")
    validate.add_argument("path", nargs="?", default=None)
    summary = sub.add_parser("summary", help="summarize a synthesized cloud assembly")
    summary.add_argument("outdir", nargs="?", default="cdk.out")
    summary.add_argument("--manifest", default=None)
    report = sub.add_parser("report", help="write each product's evidence pack (MD and HTML)")
    report.add_argument("path", nargs="?", default=None)
    report.add_argument("--outdir", default="cdk.out")
    report.add_argument("--out", default="reports")
    previews = sub.add_parser("dashboards", help="render synthesized dashboards to HTML")
    previews.add_argument("--outdir", default="cdk.out")
    previews.add_argument("--out", default="reports/dashboards")
    previews.add_argument(
        "--rehearsal",
        default="reports/rehearsal",
        help="where `make rehearse` wrote each product's metrics.json (charts' data)",
    )
    new = sub.add_parser("new", help="scaffold a working product folder (manifest, code, data)")
    new.add_argument("name", help="the product's name: lowercase letters, digits and dashes")
    new.add_argument("--dir", default="examples", help="where the folder goes (examples/)")
    preflight = sub.add_parser(
        "preflight", help="read-only checks of the manifests' AWS accounts before a first deploy"
    )
    preflight.add_argument("path", nargs="?", default=None)
    preflight.add_argument(
        "--double", action="store_true", help="run against an offline test double (moto)"
    )
    preflight.add_argument("--profile", default=None, help="AWS profile of the home account")
    preflight.add_argument(
        "--account-profile",
        action="append",
        default=[],
        metavar="ACCOUNT=PROFILE",
        help="read this account with this profile (default: its CDK lookup role, from home)",
    )
    preflight.add_argument("--cdk-out", default="cdk.out", help="synthesized templates")
    back = sub.add_parser(
        "rollback", help="put an environment back on a version it served (docs/on-call.md)"
    )
    back.add_argument("path", help="the product folder or its manifest.yaml")
    back.add_argument("env", choices=ENV_NAMES)
    back.add_argument(
        "--to",
        type=int,
        default=None,
        metavar="VERSION",
        help="the version (default: the one served before the current one)",
    )
    back.add_argument("--reason", required=True, help="why: recorded in the audit trail")
    back.add_argument(
        "--by",
        required=True,
        metavar="CONTACT",
        help="your contact id: one of delivery.rollback_approvers",
    )
    back.add_argument(
        "--no-wait", action="store_true", help="start the update and return; run again to finish"
    )
    reference = sub.add_parser("reference", help="print the manifest reference (Markdown)")
    reference.add_argument("--write", metavar="FILE", help="update it between its markers")
    args = parser.parse_args(argv)

    if args.command == "reference":
        return write_reference(args.write)
    if args.command == "new":
        return scaffold(args.name, Path(args.dir))
    if args.command == "dashboards":
        from mlgate.cli.observability.preview import write_previews

        failed = assembly_problem(Path(args.outdir))
        if failed and "failed its validation" in failed:
            print(failed, file=sys.stderr)
            return 1
        try:
            paths = write_previews(Path(args.outdir), Path(args.out), Path(args.rehearsal))
        except FileNotFoundError as err:
            print(err, file=sys.stderr)
            return 1
        print("\n".join(f"wrote {p}" for p in paths))
        return 0

    if args.command == "rollback":
        return run_rollback(args)
    try:
        source = args.path if args.command in ("validate", "report", "preflight") else args.manifest
        manifests = load_manifests(source or default_target())
    except ManifestBatchError as err:
        print("\n".join(err.lines), file=sys.stderr)
        return 1
    if args.command == "validate":
        print("\n\n".join(one_pager(m) for m in manifests))
        return 0
    if args.command == "report":
        return write_reports(manifests, Path(args.outdir), Path(args.out))
    if args.command == "preflight":
        return run_preflight(manifests, args)
    print(synth_summary(Path(args.outdir), manifests))
    return 0


def run_preflight(manifests: list[Manifest], args: argparse.Namespace) -> int:
    from mlgate.cli import preflight

    cdk_out = Path(args.cdk_out)
    if args.double:
        try:
            from tools.preflight_double import run_double
        except ImportError as err:
            print(
                f"preflight --double needs the development packages (make setup-dev): {err}",
                file=sys.stderr,
            )
            return 2
        return run_double(manifests, cdk_out=cdk_out)
    profiles = dict(item.partition("=")[::2] for item in args.account_profile)
    if any(len(a) != 12 or not a.isdigit() or not p for a, p in profiles.items()):
        print("--account-profile takes ACCOUNT=PROFILE, a 12-digit account id", file=sys.stderr)
        return 2
    return preflight.run(manifests, profile=args.profile, profiles=profiles, cdk_out=cdk_out)


def run_rollback(args: argparse.Namespace) -> int:
    from mlgate.cli.rollback import rollback
    from mlgate.manifest import ManifestError, load_manifest

    path = Path(args.path)
    try:
        manifest = load_manifest(path / "manifest.yaml" if path.is_dir() else path)
    except ManifestError as err:
        print(err, file=sys.stderr)
        return 1
    return rollback(
        manifest, args.env, to=args.to, reason=args.reason, by=args.by, wait=not args.no_wait
    )


def scaffold(name: str, parent: Path) -> int:
    from mlgate.cli.scaffold import new_product

    try:
        folder = new_product(name, parent)
    except (ValueError, FileExistsError) as err:
        print(f"mlgate new: {err}", file=sys.stderr)
        return 1
    print(
        f"created {folder}/: manifest.yaml (every field documented), etl/transform.py, "
        f"data/generate.py\nnext: edit the manifest, then\n"
        f"  make validate MANIFEST={folder}\n  make synth MANIFEST={folder}"
    )
    return 0


def default_target() -> str:
    """The product(s) a command takes when given none: cdk.json's `manifest` context, as
    `cdk synth` reads it, else every product under examples/."""
    try:
        context = json.loads(Path("cdk.json").read_text())["context"]
        return str(context["manifest"])
    except (OSError, ValueError, KeyError):
        return "examples"


def one_pager(m: Manifest) -> str:
    """The product's one-pager as plain text: owners, gates, RICE, top risks."""
    owners = m.product.owners
    lines = [
        f"{m.product.display_name} ({m.product.name})",
        f"  objective: {m.product.objective}",
        "  owners: "
        + ", ".join(
            f"{role} {m.contact(who).name} <{m.contact(who).email}>"
            for role, who in (
                ("PM", owners.product_manager),
                ("ML lead", owners.ml_lead),
                ("on-call", owners.on_call),
            )
        ),
        "  gates, in release order:",
    ]
    for i, gate in enumerate(m.gates, 1):
        who = (
            ", ".join(m.contact(a).name for a in gate.approvers)
            if gate.kind is GateKind.MANUAL
            else "automated"
        )
        wait = f"; times out after {gate.timeout_hours} h" if gate.kind is GateKind.MANUAL else ""
        lines.append(f"    {i}. {gate.name} [{gate.placement.value}] {who}{wait}")
    lines.append(
        "  environments: "
        + "; ".join(
            f"{env} {m.environment(env).account} {m.environment(env).region} "
            + ("(its own account: the release pipeline deploys through its roles)"
               if m.is_remote(env) else "(home)" if env == "staging" else "(home account)")
            for env in ENV_NAMES
        )
    )  # fmt: skip
    for env in ENV_NAMES:
        if hours := m.env_serving(env).off_hours_summary():
            lines.append(f"  {env} {hours}")
    lines.append(
        f"  RICE score: {m.rice.score:,} (reach {m.rice.reach:,} x impact {m.rice.impact} x "
        f"confidence {m.rice.confidence} / effort {m.rice.effort})"
    )
    lines.append("  top risks:")
    for risk in m.open_risks[:3]:
        lines.append(
            f"    {risk.id} score {risk.score:>2}: {risk.title} "
            f"(owner {m.contact(risk.owner).name})"
        )
    return "\n".join(lines)


def synth_summary(outdir: Path, manifests: list[Manifest]) -> str:
    """Stacks, resources per stack, gates, and the cdk-nag verdict of a synthesized app."""
    templates = sorted(outdir.glob("*.template.json"))
    lines = [f"Synthesized {len(templates)} stacks into {outdir}/"]
    acknowledged = 0
    for path in templates:
        template = json.loads(path.read_text())
        resources = template.get("Resources", {})
        kinds = Counter(r["Type"] for r in resources.values())
        acknowledged += sum(
            len(r.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []))
            for r in resources.values()
        )
        top = ", ".join(f"{n} {t.split('::')[-1]}" for t, n in kinds.most_common(4))
        lines.append(f"  {path.name.removesuffix('.template.json'):48} {len(resources):4}  ({top})")
    for m in manifests:
        order = " -> ".join(g.name for g in m.gates)
        lines.append(f"Gates of {m.product.name}: {order}")
        for env in ENV_NAMES:
            lines.append(f"  {env} rollout: {m.rollout_summary(env)}")
        lines += summary_lines(estimate(m))
    lines.append(
        "cdk-nag AwsSolutions: passed, 0 unacknowledged findings; "
        f"{acknowledged} acknowledgments, each with its reason in the template metadata"
    )
    return "\n".join(lines)


def write_reference(readme: str | None) -> int:
    from mlgate.manifest.reference import manifest_reference, replace_in

    text = manifest_reference()
    if readme is None:
        print(text, end="")
    else:
        path = Path(readme)
        path.write_text(replace_in(path.read_text(), text))
    return 0


def assembly_problem(outdir: Path) -> str | None:
    """Why the cloud assembly in `outdir` cannot be described: none there, or the synth that
    wrote it failed its validation (cdk-nag), so its templates never passed."""
    if not list(outdir.glob("*.template.json")):
        return f"no synthesized templates in {outdir}: run `make synth` first"
    report = outdir / "validation-report.json"
    if report.is_file():
        failed = [
            f"{r.get('pluginName')}: {len(r.get('violations', []))} violation(s)"
            for r in json.loads(report.read_text()).get("pluginReports", [])
            if r.get("conclusion") != "success"
        ]
        if failed:
            return (
                f"the synth in {outdir} failed its validation ({'; '.join(failed)}): fix it and "
                "run `make synth` again"
            )
    return None


def write_reports(manifests: list[Manifest], outdir: Path, target: Path) -> int:
    from mlgate.cli.governance.pack import write

    problem = assembly_problem(outdir)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    for manifest in manifests:
        for path in write(manifest, outdir, target):
            print(f"wrote {path}")
    return 0
