"""Export a trained network: ONNX (checked with onnxruntime), ``torch.export`` program, model card."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nas.io import atomic_write_json, atomic_write_with


def export_onnx(model: nn.Module, input_shape: tuple[int, ...], path: str | Path) -> Path:
    """ONNX with a dynamic batch dimension, input ``input`` and output ``logits``.

    Written by torch's TorchScript-based exporter where it can: our networks are static graphs,
    which it traces in about 0.1 s, where the ``torch.export``-based exporter takes 2.5-6 s per
    network (it was most of the select stage's time). Where the TorchScript exporter has no
    translation (adaptive pooling to a size that does not divide its input, as in some
    multi-task views), the ``torch.export``-based one writes the file. ``onnx_max_abs_diff``
    checks every export against torch with onnxruntime either way."""
    model = model.eval().cpu()
    x = torch.zeros((2, *input_shape))

    def write(tmp: str) -> None:
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice
            try:
                torch.onnx.export(model, (x,), tmp, dynamo=False, verbose=False, input_names=["input"],
                                  output_names=["logits"],
                                  dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
                return
            except torch.onnx.errors.OnnxExporterError:  # an operator it cannot translate
                pass
            torch.onnx.export(model, (x,), tmp, dynamo=True, external_data=False, verbose=False,
                              input_names=["input"], output_names=["logits"],
                              dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},))

    return atomic_write_with(Path(path), write)


def export_program(model: nn.Module, input_shape: tuple[int, ...], path: str | Path) -> Path:
    """A ``torch.export`` ExportedProgram (``.pt2``), loadable with ``torch.export.load``."""
    model = model.eval().cpu()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        ep = torch.export.export(model, (torch.zeros((2, *input_shape)),),
                                 dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},))
    return atomic_write_with(Path(path), lambda tmp: torch.export.save(ep, tmp))


def onnx_max_abs_diff(model: nn.Module, onnx_path: str | Path, x: np.ndarray) -> float:
    """Largest absolute difference between onnxruntime's and torch's logits on ``x``."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})[0]
    with torch.no_grad():
        want = model.eval().cpu()(torch.from_numpy(x.astype(np.float32))).numpy()
    return float(np.abs(got - want).max())


def write_model_card(path: str | Path, card: dict) -> Path:
    return atomic_write_json(path, card)
