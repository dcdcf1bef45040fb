"""Pareto fronts and the plots of a sweep."""

from __future__ import annotations

from pathlib import Path

__all__ = ["pareto_front", "plot_metric_vs_bits", "plot_pareto"]


def pareto_front(rows: list[dict], metric: str, cost: str, higher_is_better: bool) -> list[dict]:
    """Rows not dominated in (metric, cost): no other row is at least as good on both and
    strictly better on one. Returned in order of increasing cost."""
    def better_or_equal(a, b):
        m = a[metric] >= b[metric] if higher_is_better else a[metric] <= b[metric]
        return m and a[cost] <= b[cost]

    def strictly(a, b):
        m = a[metric] > b[metric] if higher_is_better else a[metric] < b[metric]
        return m or a[cost] < b[cost]

    front = [r for r in rows
             if not any(better_or_equal(o, r) and strictly(o, r) for o in rows if o is not r)]
    return sorted(front, key=lambda r: (r[cost], r[metric]))


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish(fig, ax, path: Path, xlabel: str, ylabel: str, title: str) -> Path:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def plot_metric_vs_bits(rows: list[dict], metric: str, path: Path, title: str) -> Path:
    """Metric against weight bits, one line per activation width."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4), dpi=110)
    for acts in sorted({r["acts"] for r in rows}):
        pts = sorted((r["weights"], r[metric]) for r in rows if r["acts"] == acts)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{acts}-bit acts")
    out = _finish(fig, ax, path, "weight bits", metric, title)
    plt.close(fig)
    return out


def plot_pareto(rows: list[dict], metric: str, cost: str, higher_is_better: bool, path: Path,
                title: str) -> Path:
    plt = _plt()
    front = pareto_front(rows, metric, cost, higher_is_better)
    fig, ax = plt.subplots(figsize=(6.4, 4), dpi=110)
    ax.scatter([r[cost] for r in rows], [r[metric] for r in rows], color="0.6", label="points")
    ax.plot([r[cost] for r in front], [r[metric] for r in front], "o-", color="C3",
            label="Pareto front")
    for r in front:
        ax.annotate(f"W{r['weights']}A{r['acts']}", (r[cost], r[metric]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    out = _finish(fig, ax, path, cost, metric, title)
    plt.close(fig)
    return out
