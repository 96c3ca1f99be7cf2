"""``summary.png`` of a demo run: the search's Pareto plot, the kept-window figure and the results table.

    python tools/analysis_tools/demo_summary.py SEARCH_DIR KEPT_WINDOWS_PNG RESULTS_MD OUT_PNG

SEARCH_DIR is a ``tools/search.py`` work dir (``search_history.jsonl`` and ``best_ratios.json``). The
Pareto plot shows every distinct feasible candidate and the references (dense, uniform 0.5) with
the chosen configuration and the dense model marked; the front is drawn through every point that no
other point beats (cheaper or equal *and* better or equal), the dense reference included even when it
is over the budget, so the plot shows what the budget costs in score.
"""
import argparse
import json
import os.path as osp

from mmsparse.sparsity.evolution import pareto_front

COST_LABEL = dict(macs='backbone MACs (G)', latency='latency (ms)')


def load_search(search_dir):
    """``(history records, best_ratios.json dict)`` of a search work dir."""
    with open(osp.join(search_dir, 'best_ratios.json')) as f:
        best = json.load(f)
    with open(osp.join(search_dir, 'search_history.jsonl')) as f:
        history = [json.loads(line) for line in f if line.strip()]
    return history, best


def plot_points(history, best, cost_key):
    """Distinct points ``(cost, score, kind)``; ``kind`` is 'candidate', a reference name or 'chosen'.

    A reference or the chosen candidate replaces the plain candidate with the same genes.
    """
    points = {}
    for r in history:
        if r.get('feasible') and cost_key in r.get('constraints', {}) and r.get('fitness') is not None:
            points[json.dumps(r['genes'])] = (r['constraints'][cost_key], r['fitness'], 'candidate')
    for name, ref in (best.get('references') or {}).items():
        if ref.get('fitness') is not None and cost_key in ref.get('constraints', {}):
            points[json.dumps(ref['genes'])] = (ref['constraints'][cost_key], ref['fitness'], name)
    points[json.dumps(best['genes'])] = (best['constraints'][cost_key], best['fitness'], 'chosen')
    return list(points.values())


def first_table(markdown):
    """Cells of the first markdown table in ``markdown``: header row first, separator dropped."""
    rows, started = [], False
    for line in markdown.splitlines():
        if line.startswith('|'):
            started = True
            if not set(line) <= set('|-: '):
                rows.append([c.strip() for c in line.strip().strip('|').split('|')])
        elif started:
            break
    return rows


def draw_summary(out_png, search_dir, kept_png, table_md, title=''):
    """Write ``out_png``: Pareto plot (top left), kept-window figure (top right), results table (bottom,
    the whole width, scaled to fit it so that no column is cut off)."""
    import matplotlib
    matplotlib.use('Agg')  # files only; never needs a display
    import matplotlib.pyplot as plt
    from PIL import Image

    history, best = load_search(search_dir)
    cost_key = next(iter(best['constraints']))
    pts = plot_points(history, best, cost_key)
    kept = Image.open(kept_png).convert('RGB') if kept_png and osp.isfile(kept_png) else None
    rows = first_table(table_md)

    fig = plt.figure(figsize=(24, 13), dpi=100)
    grid = fig.add_gridspec(2, 2, width_ratios=(1, 1.4), height_ratios=(3, 1))
    ax = fig.add_subplot(grid[0, 0])
    cand = [p for p in pts if p[2] == 'candidate']
    ax.scatter([p[0] for p in cand], [p[1] for p in cand], s=25, c='0.55', label='searched candidates')
    front = [pts[i] for i in pareto_front([(p[0], p[1]) for p in pts])]
    ax.step([p[0] for p in front], [p[1] for p in front],
            where='post',
            color='red',
            lw=1.5,
            label='Pareto front (all points)',
            zorder=2)
    style = {
        'dense': ('s', '#377eb8', 'dense'),
        'uniform_0.5': ('D', '#984ea3', 'uniform 0.5'),
        'chosen': ('*', '#ff7f00', 'chosen (searched)')
    }
    for c, s, kind in pts:
        if kind in style:
            marker, color, label = style[kind]
            ax.scatter([c], [s],
                       marker=marker,
                       s=260 if marker == '*' else 110,
                       c=color,
                       edgecolors='black',
                       zorder=3,
                       label=label)
    ax.set_xlabel(COST_LABEL.get(cost_key, cost_key))
    ax.set_ylabel(best.get('score_key', 'score'))
    ax.set_title(f'evolution search: {len(pts)} distinct points')
    ax.grid(alpha=0.3)
    # below the axes: inside, it can hide the dense point in the lower right corner
    ax.legend(loc='upper center', bbox_to_anchor=(0.5, -0.1), ncol=3, frameon=False)
    ax2 = fig.add_subplot(grid[0, 1])
    ax2.axis('off')
    if kept is not None:
        ax2.imshow(kept)
        ax2.set_title('windows the searched model processes')
    ax3 = fig.add_subplot(grid[1, :])
    ax3.axis('off')
    if rows:
        # bbox: the table fills the axes (columns in proportion to their text) instead of being centred
        # at its natural width, which ran past the figure's left edge for long ratio lists
        table = ax3.table(cellText=rows[1:], colLabels=rows[0], cellLoc='center', bbox=[0, 0.15, 1, 0.8])
        table.auto_set_font_size(False)
        table.set_fontsize(10)
        table.auto_set_column_width(list(range(len(rows[0]))))
    if title:
        fig.suptitle(title, fontsize=14)
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)
    return pts, front


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('search_dir')
    p.add_argument('kept_windows_png')
    p.add_argument('results_md')
    p.add_argument('out_png')
    p.add_argument('--title', default='')
    args = p.parse_args(argv)
    with open(args.results_md) as f:
        table = f.read()
    draw_summary(args.out_png, args.search_dir, args.kept_windows_png, table, args.title)
    print(f'summary -> {args.out_png}')


if __name__ == '__main__':
    main()
