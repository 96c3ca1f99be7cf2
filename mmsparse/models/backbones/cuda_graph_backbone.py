"""Replay a backbone's inference forward as a CUDA graph, one graph per input shape and ratio set.

On a GPU the window path of a pruned Swin is launch-bound: each block is a few dozen small kernels
whose launch overhead, not their arithmetic, sets the latency at batch 1. A CUDA graph records the
kernels of one forward once and replays them with a single launch. A graph is only valid for the
shapes, dtypes and kernel choices it recorded, so :class:`CUDAGraphForward` keys graphs by the input's
shape, dtype and device, the module's pruning ratios and the autocast state, records a new one on a
new key (keeping at most ``max_graphs``) and runs the module eagerly whenever a graph cannot apply:
training, gradients, or an input on a device it does not graph.
"""
from collections import OrderedDict
from typing import Callable, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import nn

__all__ = ['CUDAGraphForward', 'capture_cuda_graph', 'GraphKey']

#: ``capture(fn, static_input, warmup_iters) -> (replay, static_outputs)``
CaptureFn = Callable[[Callable, torch.Tensor, int], Tuple[Callable[[], None], tuple]]


class GraphKey(NamedTuple):
    """What a recorded graph is valid for."""
    shape: Tuple[int, ...]
    dtype: torch.dtype
    device: torch.device
    ratios: Optional[tuple]
    autocast: Optional[torch.dtype]  # the autocast dtype, or None outside autocast


def capture_cuda_graph(fn: Callable,
                       static_input: torch.Tensor,
                       warmup_iters: int = 3) -> Tuple[Callable[[], None], tuple]:
    """Record ``fn(static_input)`` into a ``torch.cuda.CUDAGraph``.

    The warm-up calls run on a side stream, as CUDA graph capture requires, and fill every lazy cache
    (cuDNN/cuBLAS handles, the backbone's geometry and bias caches) before recording, so nothing is
    allocated for the first time inside the graph.

    Returns:
        ``(replay, static_outputs)``: ``replay()`` re-runs the recorded kernels on whatever
        ``static_input`` holds and overwrites ``static_outputs`` in place.
    """
    stream = torch.cuda.Stream(device=static_input.device)
    stream.wait_stream(torch.cuda.current_stream(static_input.device))
    with torch.cuda.stream(stream):
        for _ in range(warmup_iters):
            fn(static_input)
    torch.cuda.current_stream(static_input.device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_outputs = fn(static_input)
    return graph.replay, static_outputs


class _Recorded(NamedTuple):
    static_input: torch.Tensor
    replay: Callable[[], None]
    static_outputs: tuple


class CUDAGraphForward(nn.Module):
    """Wraps ``module`` (a backbone: images in, a tuple of feature maps out) so that inference calls
    replay a recorded CUDA graph.

    Args:
        module: the backbone; its ``get_pruning_ratios()`` (when it has one) is part of the key, so
            ``set_pruning_ratios`` between calls records (or reuses) the graph of the new ratios.
        max_graphs: graphs kept (least recently used dropped first); each holds its own memory pool.
        warmup_iters: eager calls before recording.
        clone_outputs: return copies; ``False`` returns the graph's static outputs, which the next
            replay overwrites (saves one copy per output when the caller consumes them at once).
        capture: the recording step, ``capture_cuda_graph`` by default (replaceable in tests).
        device_types: device types graphed; inputs elsewhere run eagerly.

    Attributes:
        captures: graphs recorded so far; eager_calls: calls that ran the module eagerly.
    """

    def __init__(self,
                 module: nn.Module,
                 max_graphs: int = 4,
                 warmup_iters: int = 3,
                 clone_outputs: bool = True,
                 capture: Optional[CaptureFn] = None,
                 device_types: Sequence[str] = ('cuda', )):
        super().__init__()
        if int(max_graphs) < 1:
            raise ValueError(f'max_graphs must be >= 1, got {max_graphs!r}')
        if int(warmup_iters) < 1:
            raise ValueError(f'warmup_iters must be >= 1, got {warmup_iters!r}')
        self.module = module
        self.max_graphs = int(max_graphs)
        self.warmup_iters = int(warmup_iters)
        self.clone_outputs = bool(clone_outputs)
        self.capture = capture or capture_cuda_graph
        self.device_types = tuple(device_types)
        self._graphs: 'OrderedDict[GraphKey, _Recorded]' = OrderedDict()
        self.captures = 0
        self.eager_calls = 0

    def graph_key(self, x: torch.Tensor) -> GraphKey:
        get = getattr(self.module, 'get_pruning_ratios', None)
        ratios = tuple(tuple(float(r) for r in s) for s in get()) if callable(get) else None
        dev = x.device.type
        autocast = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else None
        return GraphKey(tuple(x.shape), x.dtype, x.device, ratios, autocast)

    def can_graph(self, x: torch.Tensor) -> bool:
        """Inference on a graphed device: no gradient recorded, module in eval mode."""
        return (x.device.type in self.device_types and not torch.is_grad_enabled()
                and not self.module.training)

    def forward(self, x: torch.Tensor):
        """``(B, 3, H, W)`` -> the module's outputs (replayed, or eager when no graph applies)."""
        if not self.can_graph(x):
            self.eager_calls += 1
            return self.module(x)
        key = self.graph_key(x)
        rec = self._graphs.get(key)
        if rec is None:
            rec = self._record(key, x)
        else:
            self._graphs.move_to_end(key)
            rec.static_input.copy_(x)
        rec.replay()
        outs = rec.static_outputs
        return tuple(o.clone() for o in outs) if self.clone_outputs else tuple(outs)

    def _record(self, key: GraphKey, x: torch.Tensor) -> _Recorded:
        while len(self._graphs) >= self.max_graphs:
            self._graphs.popitem(last=False)  # frees that graph's pool once nothing refers to it
        static_input = x.clone()
        replay, outs = self.capture(self.module, static_input, self.warmup_iters)
        rec = self._graphs[key] = _Recorded(static_input, replay, tuple(outs))
        self.captures += 1
        return rec

    def reset(self) -> None:
        """Drop every recorded graph (e.g. after loading new weights into a module whose parameters
        were re-allocated rather than copied into)."""
        self._graphs.clear()
