"""What mmsparse needs from the OpenMMLab stack before any plug-in runs: version checks and the
checkpoint loader fix. :func:`setup_openmmlab` is idempotent; the plug-in packages (``models``,
``engine``, ``evaluation``), ``register_all_modules`` and the tools call it.

It lives apart from ``mmsparse/__init__.py`` so that the torch-only core (``mmsparse.sparsity``) and the
toy data generators import without mmengine or mmcv.
"""
MMCV_RANGE = ('2.1.0', '2.2.0')
MMENGINE_RANGE = ('0.10.7', '1.0.0')

_done = False


def setup_openmmlab() -> None:
    """Check the mmcv / mmengine versions and install mmsparse's checkpoint loader (once)."""
    global _done
    if _done:
        return
    import mmengine
    from mmengine.utils import digit_version
    try:
        import mmcv
    except ImportError as e:  # pragma: no cover
        raise ImportError('mmsparse needs mmcv 2.1.0 built with ops; run `make install`') from e
    for name, version, (low, high) in (('mmcv', mmcv.__version__, MMCV_RANGE),
                                       ('mmengine', mmengine.__version__, MMENGINE_RANGE)):
        if not digit_version(low) <= digit_version(version) < digit_version(high):
            raise ImportError(f'{name}=={version} is installed, but mmsparse needs {name}>={low}, '
                              f'<{high} (run `make install`)')
    # mmengine 0.10.7 cannot read its own checkpoints under torch>=2.6 (weights_only); see
    # mmsparse.utils.checkpoint
    from mmsparse.utils.checkpoint import install_checkpoint_loader
    install_checkpoint_loader()
    _done = True
