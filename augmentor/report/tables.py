"""Human-readable rendering of results as rich tables (the CLI prints them; ``--json`` skips them)."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def counts_table(title: str, counts: dict[str, dict[str, dict[str, int]]]) -> Table:
    """Images per class (rows) and per split × source (columns)."""
    table = Table(title=title)
    table.add_column("class")
    columns: list[tuple[str, str]] = []
    for split, per_class in counts.items():
        found = {s for by_source in per_class.values() for s in by_source}
        sources = sorted(found, key=lambda s: (s != "real", s))  # real first
        for source in sources:
            columns.append((split, source))
            table.add_column(f"{split}\n{source}", justify="right")
        columns.append((split, "*"))
        table.add_column(f"{split}\ntotal", justify="right", style="bold")
    class_names = list(next(iter(counts.values())))
    totals = [0] * len(columns)
    for name in class_names:
        row = []
        for k, (split, source) in enumerate(columns):
            by_source = counts[split][name]
            n = sum(by_source.values()) if source == "*" else by_source.get(source, 0)
            totals[k] += n
            row.append(f"{n:,}")
        table.add_row(name, *row)
    table.add_section()
    table.add_row("all", *[f"{n:,}" for n in totals], style="bold")
    return table


def info_table(info: dict[str, Any]) -> Table:
    """``augmentor data info`` as a table: counts per class and split, then the facts below it."""
    height, width = info["image_size"]
    splits = info["splits"]
    title = (
        f"{info['name']} ({info['format']}): {len(info['classes'])} classes, "
        f"{height}×{width}, {info['channels']} channel{'s' if info['channels'] > 1 else ''}"
    )
    by_source = {name: split["per_class_and_source"] for name, split in splits.items()}
    if any(set(s) - {"real"} for split in by_source.values() for s in split.values()):
        table = counts_table(title, by_source)  # an augmented dataset: show where images came from
    else:
        table = Table(title=title)
        table.add_column("class")
        for split in splits:
            table.add_column(split, justify="right")
        for name in info["classes"]:
            table.add_row(name, *[f"{splits[s]['per_class'][name]:,}" for s in splits])
        table.add_section()
        table.add_row("all", *[f"{splits[s]['total']:,}" for s in splits], style="bold")
    table.min_width = len(title)  # the title on one line: a narrow table wrapped it mid-phrase ("10 \nclasses")
    duplicates = info["duplicates"]
    table.caption = (
        f"exact duplicates: {duplicates['groups']} groups, {duplicates['extra_copies']} extra copies, "
        f"{duplicates['across_splits']} across splits"
        + (f"; skipped {len(info['skipped'])} unreadable files" if info["skipped"] else "")
    )
    return table


def pipeline_table(rows: list[dict[str, Any]], title: str) -> Table:
    """The transforms of a pipeline, nested ones indented."""
    table = Table(title=title)
    table.add_column("transform")
    table.add_column("p", justify="right")
    table.add_column("arguments")
    for row in rows:
        args = ", ".join(f"{k}={_short(v)}" for k, v in row["args"].items())
        name = "  " * row["depth"] + row["transform"] + (" (flip)" if row["flip"] else "")
        table.add_row(name, "" if row["p"] is None else f"{row['p']:g}", args)
    return table


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_short(v) for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    return str(value)


def confusion_table(scores: dict[str, Any]) -> Table:
    """Per-class accuracy and the confusion matrix (rows: true class, columns: predicted)."""
    names = scores["class_names"]
    table = Table(title="confusion matrix (rows: true, columns: predicted)")
    table.add_column("class")
    table.add_column("acc", justify="right", style="bold")
    for k in range(len(names)):
        table.add_column(str(k), justify="right")
    for k, (name, row) in enumerate(zip(names, scores["confusion"], strict=True)):
        cells = [f"[bold]{n}[/bold]" if j == k else (str(n) if n else "·") for j, n in enumerate(row)]
        table.add_row(f"{k} {name}", f"{scores['per_class'][name]:.3f}", *cells)
    return table


def _cas_seeds(result: dict[str, Any]) -> str:
    """ ", mean of K seeds, gap G ± SD" when the CAS is averaged over several classifier seeds, else ""."""
    gaps = result.get("cas_gaps")
    if not gaps:
        return ""
    mean = sum(gaps) / len(gaps)
    sd = (sum((g - mean) ** 2 for g in gaps) / (len(gaps) - 1)) ** 0.5
    return f"; mean of {len(gaps)} seeds, gap {100 * mean:.1f} ± {100 * sd:.1f} points"


def score_table(result: dict[str, Any]) -> Table:
    """``augmentor score``: the scored images beside the real reference."""

    def number(value: float | None, digits: int = 2) -> str:
        return "—" if value is None else f"{value:,.{digits}f}"

    def percent(value: float | None) -> str:
        return "—" if value is None else f"{100 * value:.1f}%"

    latent = result.get("latent", "prior")
    sampled = "" if latent == "prior" else f", codes from --latent {latent}"
    table = Table(title=f"{result['target']} ({result['kind']}) against {result['real']}, n = {result['n']:,}{sampled}")
    table.add_column("metric")
    table.add_column(result["kind"], justify="right", style="bold")
    table.add_column("real", justify="right")
    table.add_column("real column", style="dim")
    rows = [
        ("FID (lower: closer)", number(result["fid"]), number(result["f0"]), "F0: train vs test sample"),
        ("FID / F0", number(result["fid_ratio"]), "1.00", ""),
        (
            "KID × 1000",
            f"{1000 * result['kid_mean']:.2f} ± {1000 * result['kid_std']:.2f}",
            f"{1000 * result['kid_real_mean']:.2f} ± {1000 * result['kid_real_std']:.2f}",
            "train vs test sample",
        ),
        (
            "diversity: pairwise SSIM (lower: more varied)",
            number(result["diversity_ssim"], 3),
            number(result["real_diversity_ssim"], 3),
            "train sample",
        ),
        (
            f"memorisation: nearest train image < {result['memorisation_threshold']:g}",
            percent(result["memorisation_rate"]),
            percent(result["real_memorisation_rate"]),
            "test images",
        ),
        (
            "nearest train image, median RMS distance",
            number(result["nearest_median"], 3),
            number(result["real_nearest_median"], 3),
            "test images",
        ),
        (
            "CAS: test accuracy when trained on it",
            number(result["cas"], 3),
            number(result["real_accuracy"], 3),
            f"{result['cas_arch']} on as many real train images, {result['cas_steps']} steps{_cas_seeds(result)}"
            if result["cas_steps"]
            else "--no-cas",
        ),
    ]
    for row in rows:
        table.add_row(*row)
    table.caption = f"features: {result['features']}; {result['seconds']} s on {result['device']}"
    return table
