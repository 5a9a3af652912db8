import json

import numpy as np
import pytest
import torch

from nas import stages
from nas.data import load_prepared
from nas.export import export_onnx, export_program, onnx_max_abs_diff
from nas.spaces.elastic_build import extract_subnet
from nas.supernet import load_supernet


@pytest.mark.slow
def test_onnx_and_torch_export_match_the_torch_model(trained, tmp_path):
    bundle = load_supernet(trained.supernet.out_dir)
    data = load_prepared(trained.data.out_dir)
    rng = np.random.default_rng(0)
    net = extract_subnet(bundle.net, bundle.space.sample(rng)).eval()
    onnx_path = export_onnx(net, data.input_shape, tmp_path / "m.onnx")
    assert onnx_max_abs_diff(net, onnx_path, data.x_test[:7]) < 1e-4  # also a batch size not seen at export
    import onnx

    onnx.checker.check_model(str(onnx_path))
    pt2 = export_program(net, data.input_shape, tmp_path / "m.pt2")
    prog = torch.export.load(str(pt2))
    x = torch.from_numpy(data.x_test[:5])
    torch.testing.assert_close(prog.module()(x), net(x))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.pt2"]


def test_an_operator_the_fast_exporter_lacks_falls_back_to_the_torch_export_one(tmp_path):
    """Adaptive pooling to a size that does not divide the input has no TorchScript-exporter
    translation; the file still comes out, with a dynamic batch, and matches torch."""
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(),
                              torch.nn.Linear(48, 5)).eval()
    path = export_onnx(net, (1, 9, 9), tmp_path / "m.onnx")
    x = np.random.default_rng(0).random((3, 1, 9, 9)).astype(np.float32)
    assert onnx_max_abs_diff(net, path, x) < 1e-5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


@pytest.mark.slow
def test_finetune_and_export_writes_a_model_card(trained):
    bundle = load_supernet(trained.supernet.out_dir)
    g = bundle.space.smallest()
    row = {"candidate_id": g.key(), "genome": g.to_json(), "val_accuracy": 0.5}
    card = stages.finetune_and_export(trained, row, ["knee"])
    models = __import__("pathlib").Path(trained.selection.out_dir) / "models"
    saved = json.loads((models / f"{g.key()}.json").read_text())
    for key in ("genome", "params", "flops", "latency_ms", "val_accuracy", "test_accuracy", "dataset_hash", "seed",
                "input_shape", "class_names"):
        assert key in saved
    assert saved["input_shape"] == [1, 1, 8, 8] and saved["class_names"] == [str(i) for i in range(10)]
    assert saved["onnx_max_abs_diff"] < 1e-4
    assert 0.0 <= card["test_accuracy"] <= 1.0
    assert (models / f"{g.key()}.onnx").is_file() and (models / f"{g.key()}.pt2").is_file()
