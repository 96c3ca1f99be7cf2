"""DDP wrapper for CPU (gloo) training."""
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm

from mmsparse.registry import MODEL_WRAPPERS

__all__ = ['MMCPUDistributedDataParallel']


@MODEL_WRAPPERS.register_module()
class MMCPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` for CPU modules.

    Differences from the parent, both needed on CPU only:

    * ``SyncBatchNorm`` (used by mmseg's UPerNet bases) raises on CPU, and mmengine reverts it only
      for non-distributed runs, so it is reverted to ``BatchNorm`` here before wrapping;
    * ``device_ids`` must be ``None`` for CPU modules (mmengine passes ``[local_rank]``).
    """

    def __init__(self, module, detect_anomalous_params: bool = False, **kwargs):
        kwargs['device_ids'] = None
        kwargs.pop('output_device', None)
        module = revert_sync_batchnorm(module)
        super().__init__(module=module, detect_anomalous_params=detect_anomalous_params, **kwargs)
