"""Small PNG figures drawn headless: matplotlib `Figure` objects on the Agg canvas, never pyplot's global state.

Figures go into Dagster metadata and HTML pages as base64, so they are kept small (`MAX_PNG_BYTES`).
"""

from __future__ import annotations

import io

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PNG_BYTES = 100_000
COLORS = {"kept": "#2e7d32", "failed": "#c62828", "rejected": "#ef6c00", "start": "#1565c0",
          "other": "#78909c", "line": "#6a1b9a"}


def new_figure(width: float = 6.4, height: float = 3.6):
    """A matplotlib Figure on an Agg canvas (no display, no pyplot, safe in worker threads)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def to_png(fig, dpi: int = 90) -> bytes:
    """The figure as PNG bytes, re-rendered at a lower resolution while it is over `MAX_PNG_BYTES`."""
    while True:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        data = buf.getvalue()
        if len(data) <= MAX_PNG_BYTES or dpi <= 40:
            return data
        dpi = int(dpi * 0.75)


def is_png(data: bytes) -> bool:
    """True when `data` starts with the PNG file signature."""
    return bytes(data[:8]) == PNG_SIGNATURE


def message_png(title: str, message: str) -> bytes:
    """A small figure that says why there is nothing to draw (keeps the metadata keys stable)."""
    fig = new_figure(5.0, 1.6)
    ax = fig.add_subplot()
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    ax.text(0.5, 0.4, message, ha="center", va="center", fontsize=9, color="#555555", wrap=True)
    return to_png(fig)


def integer_ticks(axis) -> None:
    """Counts on this axis are whole numbers: no 0.5 ticks."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def label_bars(ax, bars, values) -> None:
    """Write each bar's value above it."""
    for bar, value in zip(bars, values):
        ax.annotate(f"{value:,}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), xytext=(0, 2),
                    textcoords="offset points", ha="center", va="bottom", fontsize=7)
