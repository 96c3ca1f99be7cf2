"""tools/test.py: metrics, --out dumps that reproduce them, --show-dir; tools/train.py --amp on CPU."""
import glob
import json
import os.path as osp
import pickle

import pytest
import torch

from tests.tool_runner import data_root_options, read_test_metrics, run_tool, train_losses

CONFIG = 'configs/toy_cls/tinyresnet_1xb16_toy-imagenet.py'


@pytest.fixture(scope='module')
def trained(toy_imagenet, tmp_path_factory):
    work = str(tmp_path_factory.mktemp('cls') / 'train')
    run_tool(
        ['train.py', CONFIG, '--work-dir', work, '--cfg-options'] + data_root_options(toy_imagenet) +
        ['train_cfg.max_iters=30', 'train_cfg.val_interval=1000', 'default_hooks.checkpoint.interval=30'])
    return osp.join(work, 'iter_30.pth')


def test_out_dump_reproduces_printed_metric(trained, toy_imagenet, tmp_path):
    out = str(tmp_path / 'preds.pkl')
    work = str(tmp_path / 'test')
    run_tool(['test.py', CONFIG, trained, '--work-dir', work, '--out', out, '--cfg-options'] +
             data_root_options(toy_imagenet))
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 8 * 4  # every val image
    correct = sum(int(p['pred_label'].item() == p['gt_label'].item()) for p in preds)
    metrics = read_test_metrics(work)
    assert metrics['accuracy/top1'] == pytest.approx(100.0 * correct / len(preds))
    top5 = sum(int(p['gt_label'].item() in torch.topk(p['pred_score'], 5).indices.tolist()) for p in preds)
    assert metrics['accuracy/top5'] == pytest.approx(100.0 * top5 / len(preds))


def test_compile_gives_the_eager_metrics(trained, toy_imagenet, tmp_path):
    # aot_eager: the dynamo graphs users get, without inductor's C++ build (minutes on 2 cores)
    metrics = {}
    for name, extra in (('eager', []), ('compiled', ['--compile', '--compile-backend', 'aot_eager'])):
        work = str(tmp_path / name)
        proc = run_tool(['test.py', CONFIG, trained, '--work-dir', work] + extra + ['--cfg-options'] +
                        data_root_options(toy_imagenet))
        metrics[name] = read_test_metrics(work)
    assert '--compile: compiled backbone (aot_eager)' in proc.stdout + proc.stderr
    for key in ('accuracy/top1', 'accuracy/top5'):
        assert metrics['compiled'][key] == pytest.approx(metrics['eager'][key])


def test_show_dir_paints_every_test_image(trained, toy_imagenet, tmp_path):
    show = str(tmp_path / 'vis')
    run_tool(
        ['test.py', CONFIG, trained, '--work-dir',
         str(tmp_path / 'w'), '--show-dir', show, '--cfg-options'] + data_root_options(toy_imagenet))
    assert len(glob.glob(osp.join(show, '**', '*.png'), recursive=True)) == 32


def test_out_must_be_pickle(trained, toy_imagenet, tmp_path):
    proc = run_tool(
        ['test.py', CONFIG, trained, '--out',
         str(tmp_path / 'x.json'), '--cfg-options'] + data_root_options(toy_imagenet),
        check=False)
    assert proc.returncode != 0 and '--out: the output file must be a pkl file' in proc.stderr


@pytest.mark.parametrize('config,wrapper', [
    (CONFIG, 'mmsparse.CPUAmpOptimWrapper'),
    ('configs/svite/svite_deit-tiny_toy.py', 'mmsparse.CPUAmpSViTEOptimWrapper'),
])
def test_amp_on_cpu_trains_in_bf16(toy_imagenet, tmp_path, config, wrapper):
    from mmengine.config import Config
    work = str(tmp_path / 'amp')
    # the config's own hooks plus a probe of the dtype every linear/conv layer computes in
    hooks = [h.to_dict() for h in Config.fromfile(config).get('custom_hooks', [])]
    probed = tmp_path / osp.basename(config)
    probed.write_text(f"_base_ = '{osp.abspath(config)}'\n"
                      "custom_imports = dict(imports=['mmsparse', 'tests.test_tools.dtype_probe'], "
                      "allow_failed_imports=False)\n"
                      f"custom_hooks = {hooks + [dict(type='DtypeProbeHook')]!r}\n")
    run_tool(['train.py', str(probed), '--amp', '--work-dir', work, '--cfg-options'] +
             data_root_options(toy_imagenet) +
             ['train_cfg.max_iters=3', 'train_cfg.val_interval=1000', 'default_hooks.logger.interval=1'])
    dumped = open(osp.join(work, osp.basename(config))).read()
    assert f"type='{wrapper}'" in dumped
    with open(osp.join(work, 'layer_dtypes.json')) as f:
        dtypes = json.load(f)
    assert list(dtypes) == ['torch.bfloat16'], dtypes  # every linear and conv ran in bf16
    losses = train_losses(work)
    assert sorted(losses) == [1, 2, 3] and all(0 < v < 10 for v in losses.values())
