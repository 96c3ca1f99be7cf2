"""GFLOPs and latency of dense mmpretrain DeiT vs SparseDeiT variants, same process, same weights.

Example (the numbers of docs/benchmark.md, section SparseDeiT)::

    python tools/analysis_tools/benchmark_deit.py --arch deit-small --batch 1 32 --threads 2

Rows: dense mmpretrain ``VisionTransformer``; ``SparseDeiT`` with no sparsity (must equal it
bit for bit); compact S2ViTE exports keeping 70 % / 50 % of heads and MLP neurons per block; SViTE+
token keep 0.7 / 0.5 (tokens physically removed); unstructured ERK masks at the paper's densities run
(a) densely (zeros multiplied) and (b) with ``torch.sparse`` CSR weights (and BSR where the mask has
empty blocks, which random masks do not). GFLOPs are MACs (docs/method/svite.md, 4; unstructured rows
use the paper's density-weighted count). Every round times each model once, in turn, so load changes on
a shared machine hit all rows alike; the median is reported. Speed-up = dense latency / row latency;
the target for compact and token rows is speed-up >= 0.9 x FLOPs ratio.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

DENSITIES = (0.5, 0.3)  # paper SViTE-Small densities (0.3 is the sparsest, 0.5 the SViTE+ one)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--arch', default='deit-small', choices=['deit-tiny', 'deit-small', 'deit-base'])
    p.add_argument('--batch', type=int, nargs='+', default=[1, 32])
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    p.add_argument('--repeat', type=int, default=5, help='timed rounds (per batch size)')
    p.add_argument('--warmup', type=int, default=1, help='untimed rounds')
    p.add_argument('--densities', type=float, nargs='*', default=list(DENSITIES))
    p.add_argument('--no-sparse-kernels', action='store_true', help='skip the CSR/BSR rows')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--json', default=None, help='also write the rows to this JSON file')
    p.add_argument('--markdown', default=None, help='also write the table to this file')
    return p.parse_args(argv)


class SparseKernelLinear(nn.Module):
    """``nn.Linear`` whose weight is a torch.sparse CSR / BSR tensor; x (..., in) -> (..., out)."""

    def __init__(self, linear: nn.Linear, layout: str, blocksize=(16, 16)):
        super().__init__()
        w = linear.weight.detach()
        self.weight = w.to_sparse_csr() if layout == 'csr' else w.to_sparse_bsr(blocksize)
        self.bias = None if linear.bias is None else linear.bias.detach()
        self.out_features = linear.out_features

    def forward(self, x):
        flat = x.reshape(-1, x.shape[-1])
        y = torch.sparse.mm(self.weight, flat.t()).t()  # (out, in) @ (in, BN) -> (BN, out)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*x.shape[:-1], self.out_features)


class SparseKernelPatchEmbed(nn.Module):
    """Patch conv as unfold + sparse matmul (kernel == stride, no padding, as in DeiT)."""

    def __init__(self, conv: nn.Conv2d, layout: str):
        super().__init__()
        self.k = conv.kernel_size
        lin = nn.Linear(conv.in_channels * self.k[0] * self.k[1], conv.out_channels)
        lin.weight.data = conv.weight.detach().reshape(conv.out_channels, -1)
        lin.bias.data = conv.bias.detach()
        self.lin = SparseKernelLinear(lin, layout)

    def forward(self, x):
        B, _, H, W = x.shape
        cols = F.unfold(x, self.k, stride=self.k).transpose(1, 2)  # (B, L, Cin k k)
        y = self.lin(cols).transpose(1, 2)  # (B, C, L)
        return y.reshape(B, -1, H // self.k[0], W // self.k[1])


def empty_block_fraction(mask: torch.Tensor, block=16) -> float:
    """Fraction of (block x block) tiles of a 2-D mask with no active entry (what BSR could skip)."""
    m = mask.reshape(mask.shape[0], -1)
    r, c = m.shape[0] // block * block, m.shape[1] // block * block
    tiles = m[:r, :c].reshape(r // block, block, c // block, block).any(3).any(1)
    return 1.0 - tiles.float().mean().item()


def to_sparse_kernels(classifier, masker, layout):
    """Swap every masked linear / conv of a classifier for a sparse-kernel module, in place."""
    names = set(n.rsplit('.', 1)[0] for n in masker.masks)
    for name in names:
        parent_name, _, child = name.rpartition('.')
        parent = classifier.get_submodule(parent_name) if parent_name else classifier
        module = getattr(parent, child) if not child.isdigit() else parent[int(child)]
        new = SparseKernelPatchEmbed(module, layout) if isinstance(module, nn.Conv2d) \
            else SparseKernelLinear(module, layout)
        if child.isdigit():
            parent[int(child)] = new
        else:
            setattr(parent, child, new)
    return classifier


def build_rows(args):
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import mmsparse.models  # noqa: F401
    from mmsparse.sparsity.masks import ParameterMasker
    from mmsparse.sparsity.vit_cost import DEIT_ARCHS, deit_cost, role_densities

    init_default_scope('mmpretrain')
    arch = DEIT_ARCHS[args.arch]
    H, Fh, C = arch['num_heads'], arch['feedforward_channels'], arch['embed_dims']

    def classifier(backbone_type, **backbone):
        return MODELS.build(
            dict(
                type='ImageClassifier',
                backbone=dict(type=backbone_type, arch=args.arch, **backbone),
                head=dict(type='VisionTransformerClsHead', num_classes=1000, in_channels=C)))

    torch.manual_seed(args.seed)
    dense = classifier('VisionTransformer')
    dense.init_weights()
    state = dense.state_dict()
    dense_macs = deit_cost(args.arch)['macs']
    rows = [dict(name='dense mmpretrain DeiT', model=dense, macs=dense_macs)]

    ours = classifier('mmsparse.SparseDeiT')
    ours.load_state_dict(state)
    rows.append(dict(name='SparseDeiT, no sparsity', model=ours, macs=dense_macs))

    for keep in (0.7, 0.5):
        heads, neurons = int(H * keep), int(Fh * keep)
        masked = classifier('mmsparse.SparseDeiT', structured=dict(heads_kept=heads, neurons_kept=neurons))
        masked.load_state_dict(state, strict=False)  # dense weights, then the masks zero slices
        masked.backbone.apply_structured_masks()
        masked.eval()
        compact_bb, _ = masked.backbone.export_compact()
        masked.backbone = compact_bb
        rows.append(
            dict(
                name=f'S2ViTE compact, {heads}/{H} heads, {neurons}/{Fh} neurons',
                model=masked,
                macs=deit_cost(args.arch, heads_kept=heads, mlp_kept=neurons)['macs']))

    for keep in (0.7, 0.5):
        tok = classifier('mmsparse.SparseDeiT', token_selector=dict(keep_ratio=keep))
        tok.load_state_dict(state, strict=False)
        n = tok.backbone.token_selector.num_kept_patches(196) + 1
        rows.append(
            dict(
                name=f'SViTE+ tokens keep {keep} ({n}/197)',
                model=tok,
                macs=deit_cost(args.arch, num_tokens=n)['macs']))

    for d in args.densities:
        sparse = classifier('mmsparse.SparseDeiT')
        sparse.load_state_dict(state)
        masker = ParameterMasker(sparse, d, seed=args.seed)
        macs = deit_cost(args.arch, weight_density=role_densities(masker.densities))['macs']
        rows.append(dict(name=f'SViTE unstructured d={d}, dense kernels', model=sparse, macs=macs))
        if args.no_sparse_kernels or args.device != 'cpu':
            continue
        empty = statistics.mean(empty_block_fraction(m) for m in masker.masks.values())
        for layout in ('csr', 'bsr'):
            if layout == 'bsr' and empty < 0.05:
                rows.append(
                    dict(
                        name=f'SViTE unstructured d={d}, BSR 16x16',
                        model=None,
                        macs=macs,
                        note=f'skipped: only {100 * empty:.2f} % of 16x16 tiles are '
                        'empty, BSR would multiply dense tiles'))
                continue
            kern = classifier('mmsparse.SparseDeiT')
            kern.load_state_dict(sparse.state_dict())
            masker_k = ParameterMasker(kern, d, seed=args.seed)  # same seed -> same masks
            masker_k.apply()
            to_sparse_kernels(kern, masker_k, layout)
            rows.append(
                dict(
                    name=f'SViTE unstructured d={d}, torch.sparse {layout.upper()}',
                    model=kern,
                    macs=macs,
                    reference=sparse))
    return rows


@torch.no_grad()
def time_rows(rows, batch, args):
    x = torch.randn(batch, 3, 224, 224, device=args.device)
    live = [r for r in rows if r['model'] is not None]
    for r in live:
        r['model'].to(args.device).eval()
        r.setdefault('times', {})[batch] = []
    for r in live:  # correctness of every variant against its reference, once
        ref = r.get('reference', rows[0]['model'])
        if 'reference' in r or r['name'].startswith('SparseDeiT, no'):
            r.setdefault('max_abs_diff', {})[batch] = \
                (r['model'](x, mode='tensor') - ref(x, mode='tensor')).abs().max().item()
    for rnd in range(args.warmup + args.repeat):
        for r in live:
            if args.device.startswith('cuda'):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            r['model'](x, mode='tensor')
            if args.device.startswith('cuda'):
                torch.cuda.synchronize()
            if rnd >= args.warmup:
                r['times'][batch].append((time.perf_counter() - t0) * 1000)


def format_table(rows, batches, args):
    dense = rows[0]
    head = ['variant', 'GMACs', 'FLOPs ratio']
    for b in batches:
        head += [f'latency b{b} (ms)', f'speed-up b{b}']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in rows:
        ratio = dense['macs'] / r['macs']
        cells = [r['name'], f"{r['macs'] / 1e9:.3f}", f'{ratio:.2f}x']
        for b in batches:
            if r['model'] is None:
                cells += ['-', '-']
                continue
            med = statistics.median(r['times'][b])
            base = statistics.median(dense['times'][b])
            cells += [f'{med:.1f}', f'{base / med:.2f}x']
        lines.append('| ' + ' | '.join(cells) + ' |')
    notes = [f"- {r['name']}: {r['note']}" for r in rows if r.get('note')]
    notes += [
        f"- {r['name']}: max abs diff vs reference {r['max_abs_diff']}" for r in rows if r.get('max_abs_diff')
    ]
    return '\n'.join(lines + [''] + notes)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = build_rows(args)
    for b in args.batch:
        time_rows(rows, b, args)
    table = format_table(rows, args.batch, args)
    device = args.device if args.device != 'cpu' else \
        f'cpu fp32, {torch.get_num_threads()} threads'
    from mmsparse.sparsity.machine import describe_machine
    header = (f'{args.arch}, 224x224, {device}, median of {args.repeat} rounds ({args.warmup} '
              f'warm-up), random weights\n\n{describe_machine(args.device)}')
    print(header + '\n\n' + table)
    if args.markdown:
        with open(args.markdown, 'w') as f:
            f.write(header + '\n\n' + table + '\n')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump([
                dict(
                    name=r['name'],
                    macs=r['macs'],
                    times=r.get('times'),
                    note=r.get('note'),
                    max_abs_diff=r.get('max_abs_diff')) for r in rows
            ],
                      f,
                      indent=1)


if __name__ == '__main__':
    main()
