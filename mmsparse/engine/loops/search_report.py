"""Files the evolution search leaves in the work dir: best ratios, Pareto plot, fine-tune config.

Kept apart from the loop so that each output can be produced (and tested) from a plain history.
"""
import json
import os
import os.path as osp
import pprint
import tempfile

from mmsparse.sparsity.evolution import pareto_front


def atomic_write(path, data, mode='w'):
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``: a kill never leaves a
    half-written file behind."""
    fd, tmp = tempfile.mkstemp(dir=osp.dirname(osp.abspath(path)), prefix='.' + osp.basename(path))
    try:
        with os.fdopen(fd, mode) as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def write_best(path, best, block_ratios, score_key, references, space_desc, lut_errors=None):
    """``best_ratios.json``: the best configuration as genes and as per-block lists."""
    out = dict(
        score_key=score_key,
        fitness=best['fitness'],
        genes=best['genes'],
        pruning_ratios=block_ratios,
        constraints=best['constraints'],
        candidate=best['index'],
        generation=best['generation'],
        references=references,
        space=space_desc)
    if lut_errors is not None:  # LUT estimate vs direct timing, relative
        out['lut_relative_errors'] = lut_errors
    atomic_write(path, json.dumps(out, indent=2))
    return out


def plot_pareto(path, history, cost_key, score_key, references=None):
    """``pareto.png``: every evaluated feasible candidate's score against ``cost_key`` (MACs or
    latency), coloured by generation, with the Pareto front (cheaper and better) drawn as a line."""
    import matplotlib
    matplotlib.use('Agg')  # files only; never needs a display
    import matplotlib.pyplot as plt

    seen, pts, gens = set(), [], []
    for r in history:
        key = json.dumps(r['genes'], sort_keys=True)
        if not r['feasible'] or key in seen or cost_key not in r['constraints']:
            continue
        seen.add(key)
        pts.append((r['constraints'][cost_key], r['fitness']))
        gens.append(r['generation'])
    fig, ax = plt.subplots(figsize=(7, 5), dpi=100)
    if pts:
        sc = ax.scatter([p[0] for p in pts], [p[1] for p in pts], c=gens, cmap='viridis', s=12, alpha=0.8)
        fig.colorbar(sc, ax=ax, label='generation')
        front = [pts[i] for i in pareto_front(pts)]
        ax.step([p[0] for p in front], [p[1] for p in front],
                where='post',
                color='red',
                lw=1.5,
                label='Pareto front')
    for name, ref in (references or {}).items():
        if ref.get('fitness') is not None and cost_key in ref['constraints']:
            ax.scatter([ref['constraints'][cost_key]], [ref['fitness']],
                       marker='*',
                       s=120,
                       label=name,
                       zorder=3)
    ax.set_xlabel(dict(macs='backbone MACs (G)', latency='latency (ms)').get(cost_key, cost_key))
    ax.set_ylabel(score_key)
    ax.set_title(f'evolution search: {len(pts)} distinct feasible candidates')
    ax.grid(alpha=0.3)
    ax.legend(loc='lower right')
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return pts


def _nested(path, value):
    """``'backbone'`` -> ``{'backbone': value}``; ``'a.b'`` -> ``{'a': {'b': value}}``; ``''`` -> value."""
    out = value
    for part in reversed(path.split('.') if path else []):
        out = {part: out}
    return out


def finetune_config_text(base_config,
                         backbone_paths,
                         block_ratios,
                         custom_hooks=None,
                         overrides=None,
                         header=''):
    """Text of a config that inherits ``base_config`` and fixes ``block_ratios`` on every backbone.

    Args:
        base_config (str): the task config to inherit (absolute path or ``pkg::`` path).
        backbone_paths (list[str]): attribute paths of the backbones under ``model``
            (``'backbone'``, ``'img_backbone'`` ...; ``''`` for the model itself).
        block_ratios (list[list[float]]): the found per-stage per-block ratios.
        custom_hooks (list[dict] | None): if given, replaces ``custom_hooks`` (the caller drops the
            sparsity-aware adaptation hook: fine-tuning keeps the ratios fixed).
        overrides (dict | None): other top-level keys, e.g. the fine-tuning schedule.
    """
    model = {}
    for p in backbone_paths:
        _merge(model, _nested(p, dict(pruning_ratios=block_ratios)))
    lines = [
        header.rstrip(), f'_base_ = [{base_config!r}]', '',
        f'model = {pprint.pformat(model, width=100, sort_dicts=False)}'
    ]
    if custom_hooks is not None:
        lines.append(f'custom_hooks = {pprint.pformat(custom_hooks, width=100, sort_dicts=False)}')
    for key, value in (overrides or {}).items():
        lines.append(f'{key} = {pprint.pformat(value, width=100, sort_dicts=False)}')
    return '\n'.join(line for line in lines if line is not None).lstrip('\n') + '\n'


def _merge(dst, src):
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = v
