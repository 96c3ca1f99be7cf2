"""``register_all_modules`` for mmsparse, as in mmdet/mmseg/mmpretrain."""
import datetime
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every mmsparse module that registers something.

    Args:
        init_default_scope (bool): also make ``mmsparse`` the current default scope, so bare type
            names (``type='SparseSwin'``) resolve in mmsparse first. Task configs keep their own
            scope (``mmdet``, ``mmseg`` ...) and name our modules as ``mmsparse.X`` instead.
    """
    from mmsparse.openmmlab import setup_openmmlab
    setup_openmmlab()
    import mmsparse.datasets  # noqa: F401,F811
    import mmsparse.engine  # noqa: F401,F811
    import mmsparse.evaluation  # noqa: F401,F811
    import mmsparse.models  # noqa: F401,F811

    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None or not DefaultScope.check_instance_created('mmsparse'):
        DefaultScope.get_instance('mmsparse', scope_name='mmsparse')
        return
    if current.scope_name != 'mmsparse':
        warnings.warn(f'The current default scope "{current.scope_name}" is not "mmsparse"; '
                      '`register_all_modules` creates a new default scope named '
                      f'mmsparse-{datetime.datetime.now()}')
        new_name = f'mmsparse-{datetime.datetime.now()}'
        DefaultScope.get_instance(new_name, scope_name='mmsparse')
