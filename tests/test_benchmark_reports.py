"""The GMM benchmark's report keeps a log of every command that produced its rows."""

import json
from pathlib import Path

from conftest import load_benchmark


posterior_gmm = load_benchmark("posterior_gmm")


def test_merging_a_subset_keeps_the_rows_and_logs_both_commands(tmp_path):
    out = str(tmp_path / "gmm.json")
    first = ["--seed", "1", "--num-samples", "8", "--solvers", "reddiff", "--json", out]
    posterior_gmm.main(first)
    rows = json.loads(Path(out).read_text())["problems"]["inpainting"]["solvers"]
    posterior_gmm.main(first[:2] + ["--num-samples", "6"] + first[4:])  # same row, other command
    report = json.loads(Path(out).read_text())
    assert [r["command"].split("--num-samples ")[1][0] for r in report["runs"]] == ["8", "6"]
    assert set(report["problems"]["inpainting"]["solvers"]) == set(rows)
    md = (tmp_path / "gmm.md").read_text()
    assert md.index("--num-samples 8") < md.index("--num-samples 6") < md.index("| solver |")


def test_set12_merge_from_copies_only_cells_and_runs_that_name_their_device_once(tmp_path):
    restoration_set12 = load_benchmark("restoration_set12")

    # a device run already merged and committed, its output folder and provenance since edited
    committed = {"command": "python benchmarks/restoration_set12.py --device cuda --results $OUT/a --tasks box",
                 "device": "NVIDIA H200", "via": "benchmarks/gpu/restoration_set12.sh"}
    ours = {"deblur (Gaussian)": {"TV (oracle λ)": {"psnr": 25.0, "ssim": 0.7}, "DPS (250 steps)": {"psnr": 21.0, "ssim": 0.5}},
            "_runs": [{"command": "python benchmarks/restoration_set12.py"}, committed]}
    gpu_run = {"command": "python benchmarks/restoration_set12.py --device cuda", "device": "NVIDIA H200"}
    raw = {"command": "python benchmarks/restoration_set12.py --device cuda --results /root/out/a --tasks box",
           "device": "NVIDIA H200"}
    theirs = {"deblur (Gaussian)": {"TV (oracle λ)": {"psnr": 99.0, "ssim": 0.9},  # carried over, not measured there
                                    "DPS (250 steps)": {"psnr": 99.0, "ssim": 0.9},
                                    "EnKG (512 particles, 20 steps)": {"psnr": 21.9, "ssim": 0.54, "device": "NVIDIA H200"}},
              "inpainting box": {"MCG (250 steps)": {"refused": "needs pinv", "device": "NVIDIA H200"}},
              "_runs": [ours["_runs"][0], raw, gpu_run]}
    (tmp_path / "restoration_set12.json").write_text(json.dumps(ours))
    (tmp_path / "gpu.json").write_text(json.dumps(theirs))
    for _ in range(2):  # merging the same file twice adds its run once; `raw` is `committed`
        restoration_set12.main(["--results", str(tmp_path), "--merge-from", str(tmp_path / "gpu.json")])
    merged = json.loads((tmp_path / "restoration_set12.json").read_text())
    assert merged["deblur (Gaussian)"]["TV (oracle λ)"]["psnr"] == 25.0
    assert merged["deblur (Gaussian)"]["DPS (250 steps)"]["psnr"] == 21.0
    assert merged["deblur (Gaussian)"]["EnKG (512 particles, 20 steps)"]["psnr"] == 21.9
    assert merged["inpainting box"]["MCG (250 steps)"]["refused"] == "needs pinv"
    assert merged["_runs"] == ours["_runs"] + [gpu_run]
    md = (tmp_path / "restoration_set12.md").read_text()
    assert "(NVIDIA H200" in md and "| 21.90 / 0.540 |" in md and "99.00" not in md


def test_calibration_benchmark_adds_solvers_to_a_cell_and_renders(tmp_path, monkeypatch):
    bench = load_benchmark("calibration_gmm")
    monkeypatch.setattr(bench, "OUT", tmp_path / "calibration_gmm.json")
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    monkeypatch.setattr(bench, "NUM_SAMPLES", 32)
    monkeypatch.setattr(bench, "SOLVERS", {"reddiff": ("reddiff", {}, 4, 4, None),
                                           "diffpir": ("diffpir", {"num_steps": 10}, 4, 4, None)})
    common = ["--seeds", "1", "--families", "smooth", "--problems", "inpainting"]
    bench.main(common + ["--solvers", "reddiff"])
    bench.main(common + ["--solvers", "reddiff", "diffpir"])  # reddiff is done: only diffpir is added
    data = json.loads((tmp_path / "calibration_gmm.json").read_text())
    cell = data["cells"]["smooth/inpainting/1"]
    assert set(cell["calibrations"]) == {"reddiff", "diffpir"}
    assert {"reddiff", "reddiff calibrated", "diffpir (num_steps 10)", "diffpir (num_steps 10) calibrated"} <= set(cell["rows"])
    assert len(data["runs"]) == 2
    bench.main(["--render"])
    md = (tmp_path / "calibration_gmm.md").read_text()
    assert "| reddiff calibrated |" in md and "--solvers reddiff diffpir" in md


def test_dncnn_protocol_scores_noise_in_0_255_units():
    """DnCNN's protocol on [-1, 1] priors: an identity 'denoiser' scores the noisy PSNR of σ/255
    noise on [0, 1] images (20·log10(255/σ) on an image far from 0 and 1, where the output's
    clipping does little; a wrong σ convention is off by 6 dB), an oracle scores far above, and the σ handed to the prior is 2σ/255."""
    import torch

    priors = load_benchmark("priors")
    x = (torch.rand(1, 1, 256, 256, generator=torch.Generator().manual_seed(0)) - 0.5) * 0.4  # [0.4, 0.6] in [0, 1]
    seen = []

    class Identity:
        def denoise(self, y, sigma):
            seen.append(sigma)
            return y

    class Oracle:
        def denoise(self, y, sigma):
            return x

    for s in (15, 25, 50):
        psnr = priors.dncnn_protocol(Identity(), [x], s)[0]
        # clipping lifts the identity's PSNR by about 0.11 dB at σ = 50 on these values, nothing below
        assert abs(psnr - 20 * torch.log10(torch.tensor(255.0 / s)).item()) < (0.15 if s == 50 else 0.05)
        assert abs(seen[-1] - 2 * s / 255) < 1e-12
        assert priors.dncnn_protocol(Oracle(), [x], s)[0] > 45
