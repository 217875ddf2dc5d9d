"""The partition, readable: a rich table of clients and a PNG of each client's label mix."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

TOP_LABELS = 12  # labels drawn by name in the plot; the rest are one "other" segment


def render(manifest: dict, console: Console | None = None) -> None:
    """Print the headline numbers and one row per client (public set first)."""
    console = console or Console()
    split, inputs = manifest["split"], manifest["inputs"]
    console.print(f"kept samples: {inputs['kept']:,}   public: {split['public']:,} "
                  f"(asked {split['public_requested']:,})   pools: " + ", ".join(f"{k} {v:,}" for k, v in split["pools"].items())
                  + f"   labels: {manifest['label']['scheme']} ({len(manifest['label']['histogram'])} distinct)")
    table = Table(title="Federated clients (CreamFL layout)")
    for col, justify in (("client", "left"), ("modality", "left"), ("samples", "right"), ("ingest shards", "right"),
                         ("labels", "right"), ("top label share", "right"), ("TV to pool", "right")):
        table.add_column(col, justify=justify)
    for c in [{"id": "public", "modality": "image_text", **manifest["public"]}, *manifest["clients"]]:
        table.add_row(c["id"], c["modality"], f"{c['samples']:,}", str(c["ingest_shards"]), str(c["distinct_labels"]),
                      f"{c['top_label_share']:.2f}", f"{c['tv_to_pool']:.2f}")
    console.print(table)


def plot_clients(manifest: dict, path: Path) -> Path:
    """Stacked bars of each client's label counts (the most common labels by name, the rest as "other")."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    overall = manifest["label"]["histogram"]
    top = sorted(overall, key=lambda k: (-overall[k], k))[:TOP_LABELS]
    rows = [{"id": "public", **manifest["public"]}, *manifest["clients"]]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(rows) + 2), 4.8), constrained_layout=True)
    bottom = [0] * len(rows)
    cmap = plt.get_cmap("tab20")
    for i, label in enumerate([*top, "other"]):
        vals = [c["labels"].get(label, 0) if label != "other" else
                sum(v for k, v in c["labels"].items() if k not in top) for c in rows]
        if not any(vals):
            continue
        ax.bar([c["id"] for c in rows], vals, bottom=bottom, label=label,
               color="lightgrey" if label == "other" else cmap(i % 20))
        bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_ylabel("samples")
    ax.set_title(f"Label mix per client ({manifest['label']['scheme']}, alpha={manifest['settings']['alpha']})")
    ax.tick_params(axis="x", labelrotation=90)
    ax.legend(fontsize=7, ncol=2, loc="upper right")
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
