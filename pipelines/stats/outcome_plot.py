"""One horizontal bar per (outcome, reason), coloured by outcome: the outcome chart every track's report uses."""

from __future__ import annotations

from pipelines.stats.png import COLORS, label_bars, message_png, new_figure, to_png

BAR_COLORS = {"kept": COLORS["kept"], "downloaded": COLORS["kept"], "success": COLORS["kept"], "failed": COLORS["failed"],
              "dropped": COLORS["failed"], "rejected": COLORS["rejected"], "skipped": "#9e9e9e"}


def outcome_plot(rows: list[dict], what: str) -> bytes:
    """PNG: horizontal bars, one per (outcome, reason), coloured by outcome."""
    rows = [r for r in rows if r["what"] == what]
    if not rows:
        return message_png(f"{what.capitalize()}s per outcome", "nothing recorded yet")
    labels = [r["outcome"] + (f": {r['reason']}" if r["reason"] else "") for r in rows]
    counts = [int(r["n"]) for r in rows]
    fig = new_figure(6.4, 0.45 + 0.28 * len(rows))
    ax = fig.add_subplot()
    bars = ax.barh(labels[::-1], counts[::-1], color=[BAR_COLORS.get(r["outcome"], "#607d8b") for r in rows][::-1])
    label_bars(ax, bars, counts[::-1])
    ax.set_xlabel("image occurrences" if what == "image" else f"{what}s")
    ax.set_title(f"{what.capitalize()}s per outcome ({sum(counts):,})", fontsize=10)
    return to_png(fig)
