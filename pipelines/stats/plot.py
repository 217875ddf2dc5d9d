"""A one-page PNG of an ingest folder's stats: where every row went, image sizes, and per-shard success rates."""

from __future__ import annotations

from pathlib import Path

_COLORS = {"kept": "#2e7d32", "failed": "#c62828", "rejected": "#ef6c00"}


def plot_ingest_stats(stats: dict, path: Path) -> Path:
    """Draw the outcome, image size and shard panels of `stats` (from `ingest_stats`) into `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_out, ax_size, ax_shard) = plt.subplots(1, 3, figsize=(16, 4.8), constrained_layout=True)
    outcomes = stats["outcomes"]
    labels = [f"{r['outcome']}: {r['detail']}" for r in outcomes]
    ax_out.barh(labels, [r["n"] for r in outcomes], color=[_COLORS.get(r["outcome"], "grey") for r in outcomes])
    ax_out.invert_yaxis()
    ax_out.set_title(f"Outcome of all {stats['input_rows']:,} input rows")
    ax_out.set_xlabel("rows")
    for i, r in enumerate(outcomes):
        ax_out.annotate(f"{r['n']:,}", (r["n"], i), xytext=(3, 0), textcoords="offset points", va="center")

    sizes = stats["image_sizes"]
    ax_size.bar([r["bucket"].split(": ")[-1] for r in sizes], [r["n"] for r in sizes], color="#1565c0")
    ax_size.set_title("Short side of downloaded originals")
    ax_size.set_ylabel("images")

    shards = stats["per_shard"]
    ax_shard.bar([r["shard"] for r in shards], [r["success_rate"] or 0 for r in shards], color="#6a1b9a")
    ax_shard.set_ylim(0, 1)
    ax_shard.set_title("Download success rate per shard")
    ax_shard.tick_params(axis="x", labelrotation=90 if len(shards) > 12 else 0)
    fig.suptitle(f"Tessera ingest: {stats['folder']}", fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
