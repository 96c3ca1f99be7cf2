"""Instance segmentation on the toy COCO: Mask R-CNN + SparseSwin trains, tests, and its COCO numbers
equal pycocotools run directly on the dumped predictions; the SAA variant trains on 1 and 2 processes."""
import json
import os.path as osp
import pickle

import pytest

from tests.tool_runner import (REPO_ROOT, assert_loss_drops, coco_options, read_scalars, read_test_metrics,
                               run_tool, train_briefly)

CONFIG = 'configs/sparsevit/maskrcnn_swin_t_toy.py'
SAA_CONFIG = 'configs/sparsevit/maskrcnn_swin_t_saa_toy.py'


def data_opts(root):
    return coco_options(root)


@pytest.fixture(scope='module')
def toy_coco(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('data') / 'toy_coco')
    run_tool([
        'dataset_converters/make_toy_coco.py', '--out', out, '--num-train', '64', '--num-val', '12', '--size',
        '224', '--num-classes', '3', '--seed', '0'
    ])
    return out


@pytest.fixture(scope='module')
def dense_run(toy_coco, tmp_path_factory):
    return train_briefly(
        CONFIG, str(tmp_path_factory.mktemp('det') / 'dense'), data_opts(toy_coco), iters=24, warmup_iters=5)


def test_dense_training_learns(dense_run):
    assert_loss_drops(dense_run, iters=24, factor=0.85, window=4)


def _coco_eval(gt_file, results, iou_type):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    gt = COCO(gt_file)
    if not results:
        return 0.0
    dt = gt.loadRes(results)
    ev = COCOeval(gt, dt, iou_type)
    ev.params.maxDets = [100, 300, 1000]  # CocoMetric's defaults
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return float(ev.stats[0])


def test_coco_metric_matches_pycocotools_on_dumped_predictions(dense_run, toy_coco, tmp_path):
    out = str(tmp_path / 'preds.pkl')
    work = str(tmp_path / 'test')
    run_tool([
        'test.py', CONFIG,
        osp.join(dense_run, 'iter_24.pth'), '--work-dir', work, '--out', out, '--cfg-options'
    ] + data_opts(toy_coco))
    metrics = read_test_metrics(work)
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    gt_file = f'{toy_coco}/annotations/instances_val2017.json'
    with open(gt_file) as f:
        gt = json.load(f)
    assert len(preds) == len(gt['images']) == 12
    cat_ids = sorted(c['id'] for c in gt['categories'])  # classes are the categories in id order
    boxes, segms = [], []
    for pred in preds:
        inst = pred['pred_instances']
        for i in range(len(inst['scores'])):
            x1, y1, x2, y2 = (float(v) for v in inst['bboxes'][i])
            common = dict(
                image_id=int(pred['img_id']),
                category_id=cat_ids[int(inst['labels'][i])],
                score=float(inst['scores'][i]))
            boxes.append(dict(common, bbox=[x1, y1, x2 - x1, y2 - y1]))
            rle = dict(inst['masks'][i])
            rle['counts'] = rle['counts'].decode() if isinstance(rle['counts'], bytes) else rle['counts']
            segms.append(dict(common, segmentation=rle))
    bbox_ap = _coco_eval(gt_file, boxes, 'bbox')
    segm_ap = _coco_eval(gt_file, segms, 'segm')
    assert metrics['coco/bbox_mAP'] == pytest.approx(bbox_ap, abs=6e-4)  # CocoMetric rounds to 3 d.p.
    assert metrics['coco/segm_mAP'] == pytest.approx(segm_ap, abs=6e-4)
    assert bbox_ap > 0 and segm_ap > 0  # it learned something in 24 iterations


def test_saa_training_samples_ratios(dense_run, toy_coco, tmp_path):
    work = str(tmp_path / 'saa')
    run_tool(['train.py', SAA_CONFIG, '--work-dir', work, '--cfg-options'] + data_opts(toy_coco) + [
        f'load_from={dense_run}/iter_24.pth', 'train_cfg.max_iters=4', 'train_cfg.val_interval=1000',
        'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=4'
    ])
    records = [r for r in read_scalars(work) if 'loss' in r]
    assert [r['iter'] for r in records] == [1, 2, 3, 4]
    gmacs = [r['saa_gmacs'] for r in records]
    dense = 0.533220352  # mmsparse.sparsity.cost.swin_macs((224, 224), embed_dims=32) / 1e9
    assert all(g <= dense + 1e-9 for g in gmacs) and len(set(gmacs)) > 1  # random ratios per iteration


def test_saa_two_process_training(dense_run, toy_coco, tmp_path):
    work = str(tmp_path / 'saa_dist')
    config = tmp_path / 'saa_dist.py'
    config.write_text(f"_base_ = '{osp.join(REPO_ROOT, SAA_CONFIG)}'\n"
                      "custom_hooks = [dict(type='mmsparse.SparsityAwareAdaptationHook', debug=True),\n"
                      "                dict(type='mmsparse.DistConsistencyHook')]\n")
    run_tool(
        ['dist_train.sh', str(config), '2', '--work-dir', work, '--cfg-options'] + data_opts(toy_coco) + [
            f'load_from={dense_run}/iter_24.pth', 'train_cfg.max_iters=3', 'train_cfg.val_interval=1000',
            'default_hooks.logger.interval=1', 'train_dataloader.batch_size=2'
        ],
        env=dict(PORT='29541'))
    with open(osp.join(work, 'param_fingerprints.json')) as f:
        assert json.load(f)['mismatched'] == []
    draws = []
    for rank in (0, 1):
        with open(osp.join(work, f'saa_ratios_rank{rank}.jsonl')) as f:
            draws.append([json.loads(line)['ratios'] for line in f])
    assert len(draws[0]) == 3 and draws[0] == draws[1]  # every rank trained the same sparsity
