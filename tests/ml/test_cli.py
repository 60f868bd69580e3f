from __future__ import annotations

import json

from training.ml.cli import main


def test_cli_trains_on_a_labelled_folder_and_prints_a_json_summary(
    image_folder, tmp_path, capsys
):
    code = main(
        [
            "train",
            str(image_folder),
            "--out",
            str(tmp_path / "model"),
            "--backbone",
            "tiny_cnn",
            "--epochs",
            "1",
            "--image-size",
            "32",
            "--batch-size",
            "8",
            "--device",
            "cpu",
        ]
    )

    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert code == 0
    assert summary["status"] == "succeeded"
    assert summary["label_names"] == ["blue", "green", "red"]
    assert summary["n_train"] + summary["n_valid"] + summary["n_test"] == 24
    assert sum(map(sum, summary["confusion_matrix"])) == summary["n_valid"]
    assert (tmp_path / "model" / "model.onnx").is_file()
    assert "epoch 2/2 (unfrozen)" in err


def test_cli_reports_a_missing_folder(tmp_path, capsys):
    code = main(["train", str(tmp_path / "nope"), "--out", str(tmp_path / "m")])

    assert code == 2
    assert "is not a folder" in capsys.readouterr().err
