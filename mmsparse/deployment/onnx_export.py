"""``torch.onnx`` export of a model at fixed sparsity, graph checks, metadata, and an onnxruntime run.

The exporter is torch's ``dynamo=True`` one (``torch.export`` + onnxscript): with the ratios fixed,
every kept-window count is a Python int, so SparseSwin's window ranking becomes ``TopK`` with a
constant ``k`` and the gathers / in-place scatters become ``Gather`` / ``GatherND`` / ``ScatterND`` on
static shapes (the TorchScript exporter also works but records every shape computation as
``Shape``/``Gather``/``Concat`` chains: about 8x the nodes for the same model).
"""
import json
from typing import Dict, Optional, Sequence

import torch

__all__ = [
    'export_onnx', 'check_exported_graph', 'read_metadata', 'run_onnxruntime', 'METADATA_PREFIX',
    'TENSORRT_MAX_TOPK', 'FORBIDDEN_OPS', 'ort_session'
]

METADATA_PREFIX = 'mmsparse.'
# TensorRT's TopK layer accepts k up to 3840; larger k is valid ONNX (onnxruntime runs it)
TENSORRT_MAX_TOPK = 3840
# ops with a data-dependent output shape, or a sort: none may appear in a fixed-sparsity export
FORBIDDEN_OPS = ('Sort', 'NonZero', 'Unique', 'Loop', 'If')


def export_onnx(module: torch.nn.Module,
                example: torch.Tensor,
                path: str,
                metadata: Optional[Dict[str, object]] = None,
                opset: int = 18,
                optimize: bool = True,
                output_names: Optional[Sequence[str]] = None):
    """Export ``module(example)`` to ``path`` with static shapes and return the ``onnx.ModelProto``.

    Args:
        module: an eval-mode module of one tensor input, e.g. :func:`mmsparse.deployment.export_part`.
        example: ``(B, 3, H, W)`` input; the graph is fixed to this shape.
        path: the ``.onnx`` file to write.
        metadata: recorded in the file's ``metadata_props`` as ``mmsparse.<key>`` (values JSON-encoded
            unless they are strings).
        opset: ONNX opset (18: ``LayerNormalization`` and ``ScatterND`` reductions are available).
        optimize: run onnxscript's graph optimiser (constant folding, dead-code removal) after
            export; off only to export faster (tests), the runtime result is the same.
        output_names: names of the graph outputs (default ``output0``, ``output1``, ...).

    Raises:
        ValueError: if the graph holds a forbidden op or a non-constant ``TopK`` k, see
            :func:`check_exported_graph`.
    """
    import onnx
    module = module.eval()
    with torch.no_grad():
        outputs = module(example)
    num_out = len(outputs) if isinstance(outputs, (tuple, list)) else 1
    if output_names is None:
        output_names = [f'output{i}' for i in range(num_out)]
    with torch.no_grad():
        program = torch.onnx.export(
            module, (example, ),
            dynamo=True,
            opset_version=opset,
            input_names=['input'],
            output_names=list(output_names),
            optimize=optimize,
            verbose=False)
    model = program.model_proto
    meta = dict(input_shape=list(example.shape), opset=opset)
    meta.update(metadata or {})
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key = METADATA_PREFIX + key
        entry.value = value if isinstance(value, str) else json.dumps(value)
    check_exported_graph(model)
    onnx.save(model, path)
    return model


def _constants(model) -> Dict[str, object]:
    """Values of initializers and ``Constant`` node outputs, by tensor name (numpy arrays)."""
    from onnx import numpy_helper
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == 'Constant':
            for attr in node.attribute:
                if attr.name == 'value':
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def check_exported_graph(model) -> Dict[str, object]:
    """Check that the graph has static sparsity and return what it found.

    Returns:
        ``{'op_counts': {op: n}, 'topk_k': [k of each TopK node, in graph order]}``.

    Raises:
        ValueError: a :data:`FORBIDDEN_OPS` node (a sort or a data-dependent shape), or a ``TopK``
            whose k is not a constant of the graph.
    """
    counts: Dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    bad = {op: counts[op] for op in FORBIDDEN_OPS if op in counts}
    if bad:
        raise ValueError(f'exported graph holds {bad}: a fixed-sparsity export must have static shapes '
                         '(window / token ranking as TopK with a constant k)')
    consts = _constants(model)
    ks = []
    for node in model.graph.node:
        if node.op_type != 'TopK':
            continue
        k = consts.get(node.input[1])
        if k is None:
            raise ValueError(f'TopK node {node.name!r} has a non-constant k ({node.input[1]!r})')
        ks.append(int(k.reshape(-1)[0]))
    return dict(op_counts=counts, topk_k=ks)


def read_metadata(path_or_model) -> Dict[str, object]:
    """The ``mmsparse.*`` metadata of an ONNX file (or ``ModelProto``), keys without the prefix."""
    import onnx
    model = onnx.load(path_or_model, load_external_data=False) if isinstance(path_or_model, str) \
        else path_or_model
    out = {}
    for entry in model.metadata_props:
        if entry.key.startswith(METADATA_PREFIX):
            try:
                out[entry.key[len(METADATA_PREFIX):]] = json.loads(entry.value)
            except json.JSONDecodeError:
                out[entry.key[len(METADATA_PREFIX):]] = entry.value
    return out


def ort_session(path: str, threads: Optional[int] = None, spinning: bool = True):
    """An onnxruntime CPU ``InferenceSession`` (``threads`` intra-op threads; default: ORT's choice).

    ``spinning=False`` stops ORT's worker threads from busy-waiting after a run: needed when PyTorch
    runs the rest of the model on the same cores right after (the spinning threads would steal them).
    """
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def run_onnxruntime(path_or_session, x: torch.Tensor, threads: Optional[int] = None):
    """Run an exported file on ``x`` with onnxruntime (CPU); a list of numpy arrays, one per output."""
    session = ort_session(path_or_session, threads) if isinstance(path_or_session, str) \
        else path_or_session
    return session.run(None, {session.get_inputs()[0].name: x.detach().cpu().numpy()})
