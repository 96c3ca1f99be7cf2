"""Named tiny Swin and DeiT sizes for the tests: one place, so that two tests that mean the same model
build the same one.

The Swin sizes are keyword arguments of mmdet's ``SwinTransformer`` (and so of ``SparseSwin``), the DeiT
sizes are ``SparseDeiT``'s ``arch`` dict. Window size 7 throughout, as in Swin-T.
"""

#: Swin-T's depths, window grids and search space at 32 channels (a third of Swin-T's 96); mmdet's
#: default drop_path_rate (0.1) is left as it is: it acts only in training
TINY_SWIN_T = dict(embed_dims=32, num_heads=(1, 2, 4, 8), depths=(2, 2, 6, 2))

#: four stages of two blocks at 32 channels: every stage has one regular and one shifted block
TINY_SWIN_2222 = dict(embed_dims=32, num_heads=(1, 2, 4, 8), depths=(2, 2, 2, 2), drop_path_rate=0.)

#: two stages of two blocks at 16 channels: regular and shifted windows and a dense stage after a
#: pruned one, for the tests that compile or re-record the forward many times
TWO_STAGE_SWIN = dict(
    embed_dims=16, num_heads=(1, 2), depths=(2, 2), strides=(4, 2), out_indices=(0, 1), drop_path_rate=0.)

#: patch 2, stride-2 stages and FFN ratio 2 at 16 channels: a 56x56 input has windows 16/4/1/1
#: per stage, so a search over it stays cheap on a CPU
PATCH2_SWIN = dict(
    embed_dims=16,
    depths=(2, 2, 2, 2),
    num_heads=(1, 1, 2, 2),
    mlp_ratio=2,
    patch_size=2,
    strides=(2, 2, 2, 2))

#: DeiT with 2 blocks of 4 heads of 16 channels (``arch`` of ``SparseDeiT``)
TINY_DEIT = dict(embed_dims=64, num_layers=2, num_heads=4, feedforward_channels=256)


def patch2_sparse_swin(**kwargs):
    """A seeded ``SparseSwin`` of :data:`PATCH2_SWIN` with 2-2-4-2 blocks (a stage with two of each
    parity, for the window-block timings), all four outputs, in eval mode; ``kwargs`` are its own."""
    import torch

    from mmsparse.models.backbones import SparseSwin
    torch.manual_seed(0)
    return SparseSwin(
        **dict(PATCH2_SWIN, depths=(2, 2, 4, 2)), out_indices=(0, 1, 2, 3), init_cfg=None, **kwargs).eval()


def config_kwargs(kwargs: dict) -> str:
    """``dict(a=1, b=(2, 3))`` -> ``'a=1, b=(2, 3)'``, to write a size into a config file's text."""
    return ', '.join(f'{k}={v!r}' for k, v in kwargs.items())


def write_backbone_config(path, backbone: dict, backbone_type: str = 'SwinTransformer'):
    """Write ``model = dict(backbone=dict(type=..., **backbone))`` to ``path`` (a ``pathlib.Path``), the
    input of the tools that only read a config's backbone; returns ``path``."""
    path.write_text(f'model = dict(backbone=dict(type={backbone_type!r}, {config_kwargs(backbone)}))\n')
    return path
