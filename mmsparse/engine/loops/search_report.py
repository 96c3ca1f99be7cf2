"""Files the evolution search leaves in the work dir: best ratios, Pareto plot, fine-tune config.

Kept apart from the loop so that each output can be produced (and tested) from a plain history;
:func:`write_search_outputs` writes all three at the end of a search.
"""
import json
import os
import os.path as osp
import pprint
import tempfile

from mmengine.config import Config
from mmengine.logging import print_log

from mmsparse.sparsity.evolution import pareto_front
from .search_constraints import UNITS


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


def values_text(values):
    """``{'macs': 0.3353}`` -> ``'0.335 G MACs'``: constraint values in words."""
    return ', '.join(f'{v:.3f} {UNITS.get(k, k)}' for k, v in values.items())


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


def write_search_outputs(work_dir,
                         best,
                         block_ratios,
                         score_key,
                         history,
                         references,
                         space_desc,
                         constraint,
                         target_names,
                         fallback_hooks=None,
                         lut_errors=None,
                         base_config=None,
                         finetune_name=None,
                         finetune=None):
    """``best_ratios.json``, ``pareto.png`` and ``finetune_<name>.py`` of a finished search.

    Args:
        work_dir (str): where they go.
        best (dict): the chosen record; ``block_ratios`` its per-stage per-block ratios.
        score_key, history, references, space_desc, lut_errors: as in :func:`write_best` /
            :func:`plot_pareto`.
        constraint (SearchConstraint): the budget (its kind is the Pareto plot's x axis).
        target_names (list[str]): names of the ratio targets in the model (``'backbone'``).
        base_config (str | None): the config the fine-tune config inherits; without a file there,
            no fine-tune config is written (and the log says so).
        finetune_name (str | None): ``finetune_<name>.py``; default ``<config stem>_<kind><max>``.
        finetune (dict | None): top-level overrides of the fine-tune config (its schedule).
        fallback_hooks (list | None): the running config's ``custom_hooks``, used when
            ``base_config`` cannot be parsed.
    """
    write_best(
        osp.join(work_dir, 'best_ratios.json'),
        best,
        block_ratios,
        score_key,
        references,
        space_desc,
        lut_errors=lut_errors)
    plot_pareto(osp.join(work_dir, 'pareto.png'), history, constraint.kind, score_key, references)
    if not base_config or not osp.isfile(base_config):
        print_log('no config file to inherit (pass base_config=): the fine-tune config was not '
                  'written',
                  logger='current')
        return
    c = constraint
    name = finetune_name or (f'{osp.splitext(osp.basename(base_config))[0]}_{c.kind}'
                             f'{"" if c.max is None else format(c.max, "g")}')
    hooks = _base_custom_hooks(base_config, fallback_hooks)
    if hooks is not None:  # fine-tuning keeps the ratios fixed: drop the sampling hook
        hooks = [
            h.to_dict() if hasattr(h, 'to_dict') else dict(h) for h in hooks
            if 'SparsityAwareAdaptationHook' not in str(h.get('type', ''))
        ]
    header = (f'# found by EvolutionSearchLoop: {score_key} {best["fitness"]:.4f} at '
              f'{values_text(best["constraints"])}; '
              f'genes {json.dumps(best["genes"])}')
    text = finetune_config_text(
        osp.abspath(base_config), _config_paths(target_names), block_ratios, hooks, finetune, header=header)
    path = osp.join(work_dir, f'finetune_{name}.py')
    atomic_write(path, text)
    print_log(
        f'best ratios {block_ratios} written to {work_dir} (best_ratios.json, pareto.png, '
        f'{osp.basename(path)})',
        logger='current')


def _base_custom_hooks(base, fallback):
    """``custom_hooks`` of the config the fine-tune config inherits (``fallback`` if unreadable)."""
    try:
        return Config.fromfile(base).get('custom_hooks', None)
    except Exception as e:  # noqa: BLE001  (a config we cannot parse: say so, use the run's)
        print_log(
            f'could not read custom_hooks from {base} ({e}); using the running config', logger='current')
        return fallback


def _config_paths(target_names):
    """Where each target sits under ``model`` in a config (``'backbone'``; ``''`` = the model)."""
    paths = []
    for name in target_names:
        if any(part.isdigit() for part in name.split('.')):
            print_log(
                f'{name} sits in a module list, which a config cannot address: set its ratios '
                'in the fine-tune config by hand',
                logger='current')
            continue
        paths.append(name)
    return paths
