"""Deterministic image writing: the same array always gives the same bytes on disk."""
import os
import os.path as osp

import cv2
import numpy as np

_PARAMS = {
    '.jpg': [cv2.IMWRITE_JPEG_QUALITY, 95],
    '.jpeg': [cv2.IMWRITE_JPEG_QUALITY, 95],
    '.png': [cv2.IMWRITE_PNG_COMPRESSION, 3],
}


def write_image(path: str, array: np.ndarray) -> None:
    """Write an image, creating parent folders.

    Args:
        path: target file; its suffix (``.jpg``, ``.JPEG``, ``.png``) picks the codec.
        array: ``(H, W, 3)`` uint8 RGB (written as the usual BGR file) or ``(H, W)`` uint8 label map
            (written as an 8-bit single-channel PNG, values unchanged).
    """
    ext = osp.splitext(path)[1].lower()
    if ext not in _PARAMS:
        raise ValueError(f'path suffix must be one of {sorted(_PARAMS)}, got {path!r}')
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise ValueError(f'array must be uint8 (H, W) or (H, W, 3), got {array.dtype} {array.shape}')
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(ext, array, _PARAMS[ext])
    if not ok:
        raise OSError(f'cv2 could not encode {path}')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(buf.tobytes())
