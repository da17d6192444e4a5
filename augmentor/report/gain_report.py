"""The gain experiment's rendering: ``report.md`` (the claim per N, the tables, the budget curve, how to read
them), its plots' files, and the results table the CLI prints. It takes the experiment's result and never
imports the experiment: ``experiments.gain`` calls it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table

from augmentor.report.gain_plots import accuracy_png, budget_png, difference_png, gain_vs_n_png, share_png

if TYPE_CHECKING:
    from augmentor.experiments.gain import GainResult


SMALL_SPLIT = 1000  # a scored split below this many images: one image moves accuracy by over 0.1 points


def percent_interval(stats: dict[str, Any], signed: bool = False) -> str:
    """A mean ± 95% interval (``mean_ci``'s dict) in percent, signed for differences."""
    mean = f"{100 * stats['mean']:+.2f}" if signed else f"{100 * stats['mean']:.2f}"
    return mean if stats["ci"] is None else f"{mean} ± {100 * stats['ci']:.2f}"


def gain_table(summary: list[dict[str, Any]], arch: str, budget: str) -> Table:
    """``augmentor gain``: accuracy per (N, arm, share) and the paired differences to real and classic; the
    verdict is against the baseline (classic where the experiment has it, else real), as in ``report.md``."""
    table = Table(title=f"gain experiment: {arch}, {budget}")
    baseline = "classic" if any(row.get("vs_classic") for row in summary) else "real"
    columns = ("N", "arm", "share", "steps", "accuracy %", "Δ vs real", "Δ vs classic", "p (Holm)", f"vs {baseline}")
    for column in columns:
        table.add_column(column, justify="left" if column in ("arm", f"vs {baseline}") else "right")
    for row in summary:
        real, classic = row.get("vs_real"), row.get("vs_classic")
        against = row.get(f"vs_{baseline}")
        table.add_row(
            str(row["per_class"]),
            row["arm"],
            f"{row['synthetic_share']:g}",
            str(row["steps"]),
            percent_interval(row["accuracy"]),
            percent_interval(real, True) if real else "–",
            percent_interval(classic, True) if classic else "–",
            "–" if not against or against["p_holm"] is None else f"{against['p_holm']:.3f}",
            against["verdict"] if against else "–",
        )
    table.caption = (
        "± is the unadjusted 95% t-interval over paired draws; p is Holm-adjusted across the arms of each N; "
        f"the verdict is against {baseline}"
    )
    return table


def report_warnings(result: GainResult) -> list[str]:
    """What the reader must not miss: a budget short of the real-only plateau, a test split too small to tell
    points apart. ``report.md`` lists them and the terminal says them."""
    c = result.config
    notes = []
    for n in c["per_class"]:
        note = plateau_note(result.curve, n) if result.curve else ""
        if note.startswith("NOT"):
            notes.append(f"N = {n}: the budget is {note}")
    scored = c.get("scored_images") or 0
    if 0 < scored < SMALL_SPLIT:
        notes.append(
            f"the {c['scored_on']} split has only {scored:,} images: one image is {100 / scored:.2f} points, so "
            "differences of a point or two are within what a few images decide"
        )
    baseline, primary = c.get("classic_baseline"), c.get("primary_arm")
    if baseline and primary and not c.get("development"):
        notes.append(
            f"the classic arm ({baseline}) is one pipeline, not tuned on this data, so a gain of {primary} over it "
            "may be a gain over a weak baseline; `augmentor study` tunes both sides on validation draws first"
        )
    return notes


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def _p(value: float | None) -> str:
    return "–" if value is None else (f"{value:.3f}" if value >= 0.001 else "<0.001")


def _interval(stats: dict[str, Any] | None, signed: bool = False) -> str:
    return "–" if not stats else percent_interval(stats, signed)


def _bracket(stats: dict[str, Any]) -> str:
    """``+1.23 pp [0.40, 2.06]`` (no interval with one draw)."""
    mean = f"{100 * stats['mean']:+.2f} pp"
    if stats["low"] is None:
        return mean
    return f"{mean} [{100 * stats['low']:+.2f}, {100 * stats['high']:+.2f}]"


def claim(result: GainResult, n: int) -> str:
    """The report's one-sentence claim at ``n`` per class, about the primary arm."""
    c = result.config
    primary, classic = c["primary_arm"], c["classic_baseline"]
    baseline = "classic" if classic else "real"
    rows = [r for r in result.summary if r["per_class"] == n and r["arm"] == primary and f"vs_{baseline}" in r]
    if not rows:
        return f"- N = {n}: no generative arm was run, so there is no claim about generated images."
    row = max(rows, key=lambda r: r[f"vs_{baseline}"]["mean"])
    comparison = row[f"vs_{baseline}"]
    over = f"real-data training with classic augmentation (`{classic}`)" if classic else "real-data training alone"
    share = f"share {row['synthetic_share']:g}" if len(c["synthetic_share"]) > 1 else ""
    return (
        f"- N = {n}: `{primary}`{' ' + share if share else ''} changes {c['scored_on']} accuracy by "
        f"**{_bracket(comparison)}** over {over}, at equal real exposure, {comparison['n']} paired draws, "
        f"Holm-adjusted p = {_p(comparison.get('p_holm'))} ({comparison['verdict']}); its generators were trained "
        f"only on the {n} labelled images per class."
    )


def budget_line(c: dict[str, Any]) -> str:
    """The budget as the reader should see it: passes over the real subset (per N), or steps."""
    if c["budget"] is not None:
        return f"{c['budget']} steps of the real-only arm ({c['budget']} × batch real-image presentations)"
    used = c["real_epochs_used"]
    if not isinstance(used, dict):  # results written before the budget could differ per N
        return f"{used:g} passes over the real subset"
    if len(set(used.values())) == 1:
        return f"{next(iter(used.values())):g} passes over the real subset"
    return ", ".join(f"{e:g} passes at N = {n}" for n, e in used.items()) + " over the real subset"


def report_markdown(result: GainResult, class_names: list[str]) -> str:
    """The whole report as Markdown."""
    c = result.config
    scored = c["scored_on"]
    seeds = f"{c['draws']} paired draws (seeds {c['seed_first']}…{c['seed_first'] + c['draws'] - 1})"
    lines = ["# Gain experiment", ""]
    if scored == "validation":
        lines += [
            "**Development run**: scores are on the validation split, seeds are development seeds; "
            "the test split was not read. Choose settings here, then run without `--development`.",
            "",
        ]
    lines += [
        f"Data `{c['source']}`; classifier `{c['arch']}`, batch {c['batch_size']}, lr {c['lr']:g}; {seeds}; "
        f"{c['scored_images']:,} {scored} images, used only for the final scores; a validation split of "
        f"{c['validation_images']:,} images ({c.get('validation_rule', 'given')}) was carved from the train split "
        "before any subset was drawn.",
        f"Budget: {budget_line(c)} in every arm. Synthetic images are "
        f"{', '.join(f'{s:g}' for s in c['synthetic_share'])} "
        f"of each batch (weight {c['synthetic_weight']:g}), so each real image is shown equally often in every arm; "
        f"`real-long` trains real-only for the augmented arms' step count. Labels of synthetic images: "
        f"{c['labels']} unless the arm says `@soft`/`@hard` (soft: {c['teacher_share']:g} × the `real` arm's "
        f"probabilities at temperature {c['temperature']:g} + the rest on the intended class)."
        + (f" The last {c['finetune_real']:g} of the real presentations are real-only." if c["finetune_real"] else "")
        + resized_note(result.generators)
        + generator_settings_note(c),
        "",
        "## Claims",
        "",
        *(claim(result, n) for n in c["per_class"]),
        "",
        *(["## Warnings", "", *(f"- {w}" for w in report_warnings(result)), ""] if report_warnings(result) else []),
        "## Results",
        "",
        "Accuracy in % (mean ± 95% t-interval over draws). Δ are paired by draw, ± their unadjusted 95% "
        "t-interval; p is the paired t-test Holm-adjusted across the arms of each N; P(>) is the share of draws "
        "the arm beats the baseline. A difference whose Holm-adjusted p is not below 0.05 is reported as none.",
        "",
        "| N | arm | share | steps | accuracy | Δ vs real | p (Holm) | verdict "
        "| Δ vs classic | p (Holm) | P(>) | verdict |",
        "|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for row in result.summary:
        real, classic = row.get("vs_real"), row.get("vs_classic")
        lines.append(
            f"| {row['per_class']} | {row['arm']} | {row['synthetic_share']:g} | {row['steps']} | "
            f"{_interval(row['accuracy'])} | {_interval(real, True)} | {_p(real['p_holm']) if real else '–'} | "
            f"{real['verdict'] if real else '–'} | {_interval(classic, True)} | "
            f"{_p(classic['p_holm']) if classic else '–'} | {_pct(classic['p_improve']) if classic else '–'} | "
            f"{classic['verdict'] if classic else '–'} |"
        )
    if result.curve:
        lines += [
            "",
            "## Budget curve (real-only, validation accuracy %)",
            "",
            "Is the chosen budget at the real-only plateau? The `real` arm's classifier retrained at a multiple of "
            "the budget, scored on the validation split (never on test).",
            "",
            "| N | × budget | passes | steps | validation accuracy |",
            "|---:|---:|---:|---:|---:|",
        ]
        for row in result.curve:
            lines.append(
                f"| {row['per_class']} | {row['multiplier']:g}× | {row['real_epochs']:g} | {row['steps']} | "
                f"{_interval(row['accuracy'])} |"
            )
        notes = [f"- N = {n}: {plateau_note(result.curve, n)}" for n in c["per_class"] if plateau_note(result.curve, n)]
        lines += ["", *notes] if notes else []
    baseline = "classic" if c["classic_baseline"] else "real"
    lines += [
        "",
        f"## Per-class Δ vs {baseline} (mean over draws, points)",
        "",
        "| N | arm | share | " + " | ".join(class_names) + " |",
        "|" + "---:|" * (3 + len(class_names)),
    ]
    for row in result.summary:
        if f"vs_{baseline}" in row:
            deltas = row[f"vs_{baseline}"]["per_class"]
            cells = " | ".join(f"{100 * deltas[name]:+.2f}" for name in class_names)
            lines.append(f"| {row['per_class']} | {row['arm']} | {row['synthetic_share']:g} | {cells} |")
    lines += ["", "## Per-class accuracy (mean over draws, %)", ""]
    lines += ["| N | arm | share | " + " | ".join(class_names) + " |", "|" + "---:|" * (3 + len(class_names))]
    for row in result.summary:
        cells = " | ".join(_pct(row["per_class_accuracy"][name]) for name in class_names)
        lines.append(f"| {row['per_class']} | {row['arm']} | {row['synthetic_share']:g} | {cells} |")
    plots = [
        "`accuracy.png` (accuracy per arm and N)",
        "`difference.png` (paired Δ vs real)",
        f"`gain_vs_n.png` (paired Δ vs {baseline} against N, 95 % bands)",
    ]
    if result.curve:
        plots.append("`budget.png` (the budget curve)")
    if len(c["synthetic_share"]) > 1:
        plots.append("`share.png` (accuracy against the synthetic share)")
    lines += ["", "Plots: " + ", ".join(plots) + "."]
    if result.samples:
        lines += [
            "",
            "## The generators' samples",
            "",
            "Each generator kind at each subset size, from its first draw: per class a real image of the subset, "
            "then samples (what the generative arms mixed into training).",
            "",
        ]
        lines += quality_table(result.generators)
        lines += [f"![{name}]({name})" for name in sorted(result.samples)]
    lines += ["", f"Command: `{c['command']}`", ""]
    return "\n".join(lines)


def generator_settings_note(c: dict[str, Any]) -> str:
    """Sentences on how every generator of the run was trained, where it differs from training from scratch on the
    subset alone for a fixed budget (``--gen-init``, ``--gen-augment``, ``--gen-budgets``)."""
    return (
        (
            f" Every generator starts from `{c['gen_init']}` (transfer), a run trained on none of this dataset's "
            "train or test images (checked by fingerprint)."
            if c.get("gen_init")
            else ""
        )
        + (
            f" Every generator trains on its real images and 9 `{c['gen_augment']}` copies of each (`--gen-augment`)."
            if c.get("gen_augment")
            else ""
        )
        + (
            f" Every VAE trains with KL weight β = {c['gen_beta']:g} (`--gen-beta`)."
            if "gen_beta" in c and "vae" in str(c.get("arms"))
            else ""
        )
        + (
            " Each generator trains for "
            + ", ".join(str(b) for b in c["gen_budgets"])
            + " steps and keeps the budget whose samples' CAS on the validation split is best (`--gen-budgets`;"
            + " a VAE that a vae-density arm uses is judged on its density-code samples)."
            if c.get("gen_budgets")
            else ""
        )
    )


def generator_groups(generators: list[dict[str, Any]], measured: str) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """The generators that have ``measured``, by (kind, subset size): one row of a quality table each."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for entry in generators:
        if entry.get(measured) is not None:
            groups.setdefault((entry["kind"], entry["images"]), []).append(entry)
    return groups


def quality_table(generators: list[dict[str, Any]]) -> list[str]:
    """Why a generative arm helps or not, per generator kind and subset size (means over its draws): the CAS on
    the validation split beside the same classifier trained on the real subset, and the samples' diversity
    beside the subset's; in a run scored on test, both classifiers' accuracy there too. Empty when the
    generators were not measured."""
    groups = generator_groups(generators, "cas_validation")
    if not groups:
        return []

    def mean(rows: list[dict[str, Any]], key: str) -> float:
        return sum(float(row[key]) for row in rows) / len(rows)

    budgets = any("budget_steps" in entry for entry in generators)
    # A run scored on test read the same CAS classifiers there too (reported only, chosen on nothing).
    on_test = all(entry.get("cas_test") is not None for rows in groups.values() for entry in rows)
    lines = [
        "| generator | real images | draws | CAS on validation % | real subset, same classifier % | "
        + ("CAS on test % | real subset on test % | " if on_test else "")
        + "diversity: samples / real (SSIM, lower is more varied) |"
        + (" steps kept (per draw) |" if budgets else ""),
        "|---|---:|---:|---:|---:|" + ("---:|---:|" if on_test else "") + "---|" + ("---|" if budgets else ""),
    ]
    for (kind, images), rows in sorted(groups.items()):
        kept = ", ".join(str(row.get("budget_steps", "–")) for row in rows)
        # A VAE judged on its density codes too (an arm used vae-density): a row for each way of sampling it.
        ways = [("", kind)]
        if all(row.get("cas_validation_density") is not None for row in rows):
            ways = [("", f"{kind} (prior codes)"), ("_density", f"{kind} (density codes)")]
        for suffix, name in ways:
            test = (
                f"{100 * mean(rows, 'cas_test' + suffix):.2f} | {100 * mean(rows, 'real_accuracy_test'):.2f} | "
                if on_test
                else ""
            )
            lines.append(
                f"| {name} | {images:,} | {len(rows)} | {100 * mean(rows, 'cas_validation' + suffix):.2f} | "
                f"{100 * mean(rows, 'real_accuracy_validation'):.2f} | {test}"
                f"{mean(rows, 'samples_diversity_ssim' + suffix):.2f} / {mean(rows, 'real_diversity_ssim'):.2f} |"
                + (f" {kept} |" if budgets else "")
            )
    return [*lines, ""]


def resized_note(generators: list[dict[str, Any]]) -> str:
    """A sentence saying the generators trained in place made their images at another size, when they did."""
    resized = sorted({g["resized"] for g in generators if g.get("resized")})
    return f" The generators were {'; '.join(resized)}." if resized else ""


def plateau_note(curve: list[dict[str, Any]], n: int) -> str:
    """Whether the chosen budget is at the real-only plateau at ``n`` (within half a point of more budget)."""
    points = {row["multiplier"]: row["accuracy"]["mean"] for row in curve if row["per_class"] == n}
    if 1.0 not in points or not any(m > 1 for m in points):
        return ""
    best_more = max(v for m, v in points.items() if m > 1)
    gap = 100 * (best_more - points[1.0])
    if gap <= 0.5:
        return f"at the plateau (more budget adds {gap:+.2f} points)"
    return f"NOT at the plateau: more budget adds {gap:+.2f} points; raise --real-epochs"


def report_files(result: GainResult, class_names: list[str]) -> dict[str, bytes]:
    """``report.md`` and the plots it names, by file name."""
    c = result.config
    files = {
        "report.md": report_markdown(result, class_names).encode(),
        "accuracy.png": accuracy_png(result.summary),
        "difference.png": difference_png(result.summary),
        "gain_vs_n.png": gain_vs_n_png(result.summary, "classic" if c["classic_baseline"] else "real"),
    }
    if result.curve:
        files["budget.png"] = budget_png(result.curve)
    if len(c["synthetic_share"]) > 1:
        files["share.png"] = share_png(result.summary)
    return {**files, **result.samples}
