"""``invprob solve``: the Hydra application — simulate or load a measurement, sample the
posterior, write samples, mean, std, a comparison figure and ``metrics.json`` to the run dir."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("invprob")


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit code 2."""


def _load_truth(path: str, prior, dtype) -> torch.Tensor:
    from .io import load_image

    from hydra.utils import to_absolute_path

    p = Path(to_absolute_path(path))  # the run dir is the cwd: resolve against the launch dir
    if not p.exists():
        raise UserError(f"input not found: {p}")
    if p.is_dir():  # a folder of images: one measurement each, in name order
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif"))
        if not files:
            raise UserError(f"input folder {p} holds no images (.png, .jpg, .bmp, .tif).")
        images = [load_image(f, gray=(prior.x_shape is None or prior.x_shape[0] == 1)) for f in files]
        if len({tuple(x.shape) for x in images}) > 1:
            raise UserError(f"the images in {p} differ in size; crop them to one size first.")
        x = torch.cat(images)
    elif p.suffix == ".npy":
        x = torch.as_tensor(np.load(p, allow_pickle=False))
        x = x[None] if prior.x_shape is not None and x.dim() == len(prior.x_shape) else x
    else:
        x = load_image(p, gray=(prior.x_shape is None or prior.x_shape[0] == 1))
    if prior.x_shape is not None and tuple(x.shape[1:]) != tuple(prior.x_shape):
        raise UserError(f"input {p} has shape {tuple(x.shape[1:])} but the prior models {tuple(prior.x_shape)}; "
                        f"resize or crop it, or choose another prior.")
    return x.to(dtype)


KSPACE_KEYS = ("kspace", "y")
MAPS_KEYS = ("coil_maps", "sens_maps", "sensitivity_maps")


def load_measurement(path: Path, operator, kspace_scale: float = 1.0):
    """A real measurement and the operator that fits it: ``(y (M, *y_shape), operator)``.

    * ``.npy``: ``y`` itself, shaped for ``operator``.
    * ``.npz`` / ``.h5``: ``kspace`` (or ``y``) plus optional ``coil_maps`` and ``mask``. MRI
      k-space (centred, DC in the middle, complex) may be ``(H, W)`` single-coil, ``(N_c, H, W)``
      multi-coil or ``(S, N_c, H, W)`` for ``S`` slices (fastMRI's layout). Multi-coil data
      give a :class:`~invprob.operators.MultiCoilMRI` whose coil maps come from the file or,
      absent there, from :func:`~invprob.operators.estimate_coil_maps` (ACS of the first slice);
      the mask comes from the file or, absent there, from the non-zero k-space samples.
      ``kspace_scale`` multiplies the k-space (the prior's units: images in its data range).
    """
    from .operators import MRI, MultiCoilMRI, estimate_coil_maps

    if not path.is_file():
        raise UserError(f"measurement file not found: {path}")
    if path.suffix == ".npy":
        return torch.as_tensor(np.load(path, allow_pickle=False)), operator
    if path.suffix == ".npz":
        store = np.load(path, allow_pickle=False)
        keys, read = list(store.files), store.__getitem__
    elif path.suffix in (".h5", ".hdf5"):
        import h5py

        with h5py.File(path, "r") as f:
            store = {k: f[k][()] for k in f.keys() if isinstance(f[k], h5py.Dataset)}
        keys, read = list(store), store.__getitem__
    else:
        raise UserError(f"measurement {path}: expected .npy, .npz or .h5, got {path.suffix!r}.")
    key = next((k for k in KSPACE_KEYS if k in keys), None)
    if key is None:
        raise UserError(f"{path} has keys {keys}; expected `kspace` (or `y`), optionally `coil_maps` and `mask`.")
    data = torch.as_tensor(np.asarray(read(key)))
    is_mri = isinstance(operator, (MRI, MultiCoilMRI))
    maps_key = next((k for k in MAPS_KEYS if k in keys), None)
    if not is_mri:
        if maps_key is not None:
            raise UserError(f"{path} holds coil maps, but operator {type(operator).__name__} is not MRI; "
                            f"choose an MRI operator (e.g. operator=mri-4x).")
        return data, operator
    if not data.is_complex():
        raise UserError(f"`{key}` in {path} must be complex k-space, got {data.dtype}.")
    data = data * kspace_scale
    if data.dim() == 2:
        data = data[None, None]
    elif data.dim() == 3:
        data = data[None]
    if data.dim() != 4:
        raise UserError(f"`{key}` in {path} has shape {tuple(data.shape)}; expected (H, W), (N_c, H, W) or "
                        f"(S, N_c, H, W).")
    H, W = data.shape[-2:]
    if "mask" in keys:
        mask = torch.as_tensor(np.asarray(read("mask"))).float()
    elif tuple(operator.mask.shape[-2:]) == (H, W):
        mask = operator.mask
    else:
        mask = (data.abs().sum((0, 1)) > 0).float()
    try:
        if data.shape[1] == 1 and maps_key is None:
            return data, MRI(mask, image_mode=operator.image_mode)
        maps = (torch.as_tensor(np.asarray(read(maps_key))) if maps_key
                else estimate_coil_maps(data[0], calib_size=min(24, H, W)))
        return data, MultiCoilMRI(mask, maps.to(torch.complex64), image_mode=operator.image_mode)
    except (ValueError, TypeError) as err:
        raise UserError(f"{path}: {err}") from err


def run(cfg) -> dict:
    from hydra.utils import instantiate

    from . import noise as noise_models
    from .metrics import psnr, ssim
    from .problem import Problem

    dtype = {"float32": torch.float32, "float64": torch.float64}[cfg.dtype]
    out = Path.cwd()
    if cfg.skip_done and (out / "metrics.json").is_file():
        log.info("skipping: %s already has metrics.json", out)
        return json.loads((out / "metrics.json").read_text())
    device = torch.device(cfg.device)
    prior = instantiate(cfg.prior).to(device=device, dtype=dtype)
    operator = instantiate(cfg.operator).to(device=device, dtype=dtype)
    solver = instantiate(cfg.solver)
    noise = noise_models.Gaussian(cfg.noise_sigma)
    truth = None
    if cfg.measurement is not None:
        from hydra.utils import to_absolute_path

        y, operator = load_measurement(Path(to_absolute_path(cfg.measurement)), operator, cfg.kspace_scale)
        # the run's `dtype=` applies to the file's data too (complex k-space: the complex dtype of that precision)
        y_dtype = torch.promote_types(dtype, torch.complex64) if y.is_complex() else dtype
        problem = Problem(operator.to(device=device, dtype=dtype), y.to(device=device, dtype=y_dtype), noise)
    else:
        if cfg.input is not None:
            truth = _load_truth(cfg.input, prior, dtype).to(device)
        elif hasattr(prior, "sample"):
            truth = prior.sample(1, torch.Generator().manual_seed(cfg.seed)).to(device=device, dtype=dtype)
        else:
            raise UserError("give `input=<image or .npy>` (ground truth) or `measurement=<.npy>`: this prior "
                            "cannot draw a ground truth itself.")
        if operator.x_shape is not None and tuple(truth.shape[1:]) != tuple(operator.x_shape):
            raise UserError(f"the ground truth is {tuple(truth.shape[1:])} but the operator acts on "
                            f"{tuple(operator.x_shape)}; override operator.x_shape or pick another input.")
        problem = Problem.simulate(operator, truth, noise, generator=torch.Generator(device).manual_seed(cfg.seed))
    result, samples = _solve_in_batches(solver, problem, prior, cfg)
    mean, std = samples.mean(1), samples.std(1) if samples.shape[1] > 1 else torch.zeros_like(samples[:, 0])
    np.save(out / "samples.npy", samples.numpy())
    np.save(out / "mean.npy", mean.numpy())
    np.save(out / "std.npy", std.numpy())
    _save_pngs(out, mean, std, prior.data_range)
    with torch.no_grad():
        residual = (operator(mean.to(device=device, dtype=dtype)) - problem.measurement).abs().flatten(1).norm(dim=1)
        rel = (residual / problem.measurement.abs().flatten(1).norm(dim=1)).cpu()
    metrics = {"solver": type(solver).__name__, "operator": type(problem.operator).__name__, "num_samples": cfg.num_samples, "nfe_per_sample": result.nfe,
               "operator_calls": result.operator_calls, "seconds": result.seconds,
               "data_consistency_rel_residual_of_mean": rel.tolist()}
    if device.type == "cuda":
        metrics["peak_memory_bytes"] = torch.cuda.max_memory_allocated(device)
    else:
        import resource

        metrics["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rng = prior.data_range
    if truth is not None and truth.dim() == 4 and rng is not None:
        metrics["psnr_mean"] = psnr(mean, truth.cpu(), rng).tolist()
        metrics["ssim_mean"] = ssim(mean, truth.cpu(), rng).tolist()
        if operator.linear:  # the classical first look: pinv (or adjoint: zero-filled for MRI)
            with torch.no_grad():
                back = operator.pinv(problem.measurement) if operator.has_pinv else operator.adjoint(problem.measurement)
            key = "psnr_pinv" if operator.has_pinv else "psnr_adjoint"
            metrics[key] = psnr(back.detach().cpu().real.clamp(*rng), truth.cpu(), rng).tolist()
    elif truth is not None:
        metrics["rmse_mean"] = (mean - truth.cpu()).flatten(1).pow(2).mean(1).sqrt().tolist()
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    _figure(out, truth, problem, samples, mean, std, rng)
    print(f"figure:  {out / 'figure.png'}\nmetrics: {out / 'metrics.json'}")
    return metrics


def _solve_in_batches(solver, problem, prior, cfg):
    """Solve ``batch_size`` measurements at a time (all at once when ``null``). Seeds depend on
    the sample index only, so the samples are the same whatever the batch size."""
    from .problem import Problem

    M, size = problem.num_measurements, cfg.get("batch_size")
    if size is None or size >= M:
        result = solver.solve(problem, prior, num_samples=cfg.num_samples, generator=cfg.seed, progress=not cfg.quiet)
        return result, result.samples.detach().cpu()
    if size < 1:
        raise UserError(f"`batch_size` must be >= 1 or null, got {size}.")
    per_measurement = [n for n, b in problem.operator.named_buffers() if b.dim() >= 3 and b.shape[0] == M]
    if per_measurement:
        raise UserError(f"the operator has one {per_measurement[0]} per measurement; solve all {M} together "
                        f"(batch_size=null) or build it with a single one.")
    parts, results = [], []
    for start in range(0, M, size):
        sub = Problem(problem.operator, problem.measurement[start:start + size], problem.noise)
        results.append(solver.solve(sub, prior, num_samples=cfg.num_samples, generator=cfg.seed,
                                    progress=not cfg.quiet))
        parts.append(results[-1].samples.detach().cpu())
    first = results[0]
    first.seconds = sum(r.seconds for r in results)
    first.operator_calls = sum(r.operator_calls for r in results)
    return first, torch.cat(parts)


def _save_pngs(out: Path, mean: torch.Tensor, std: torch.Tensor, data_range) -> None:
    """``mean.png`` (the data range mapped to black–white) and ``std.png`` (0 → its maximum) of
    the first measurement; multi-channel MRI images (real, imaginary) are shown as magnitude."""
    from PIL import Image

    def to8(img, lo, hi):
        img = img.float()
        img = img.norm(dim=0) if img.shape[0] == 2 else (img[0] if img.shape[0] == 1 else img.permute(1, 2, 0))
        return Image.fromarray(((img - lo) / max(hi - lo, 1e-12)).clamp(0, 1).mul(255).round().byte().numpy())

    if mean.dim() != 4:
        return
    lo, hi = data_range if data_range is not None and mean.shape[1] != 2 else (0.0, float(mean[0].norm(dim=0).max()))
    to8(mean[0], lo, hi).save(out / "mean.png")
    to8(std[0], 0.0, float(std[0].max())).save(out / "std.png")


def _figure(out: Path, truth, problem, samples, mean, std, data_range) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    op = problem.operator
    panels = []
    if truth is not None:
        panels.append(("truth", truth[0].cpu()))
    y = problem.measurement[:1]
    if y.dim() == 4 and not y.is_complex():
        panels.append(("measurement", y[0].cpu()))
    if op.linear:
        with torch.no_grad():
            back = op.pinv(y) if op.has_pinv else op.adjoint(y)
        panels.append(("pinv" if op.has_pinv else "adjoint", back[0].detach().cpu().real))
    panels += [("posterior mean", mean[0]), ("posterior std", std[0])]
    panels += [(f"sample {k}", samples[0, k]) for k in range(min(3, samples.shape[1]))]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels), 2.5))
    lo, hi = data_range if data_range is not None else (float(mean.min()), float(mean.max()))
    for ax, (title, img) in zip(np.atleast_1d(axes), panels):
        img = img.float()
        img = img[0] if img.dim() == 3 and img.shape[0] == 1 else (img.permute(1, 2, 0) if img.dim() == 3 else img)
        is_std = "std" in title
        ax.imshow(img.clamp(lo, hi) if not is_std and img.dim() == 2 else img,
                  cmap="magma" if is_std else "gray", vmin=None if is_std else lo, vmax=None if is_std else hi)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out / "figure.png", dpi=110)
    plt.close(fig)


_VALUE_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn", "--config-dir",
                "-cd", "--info", "--experimental-rerun"}


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the Hydra app with the config groups of :func:`invprob.registry.config_dir`."""
    import hydra
    from omegaconf import DictConfig

    from .registry import config_dir

    argv = list(sys.argv[1:] if argv is None else argv)
    groups = config_dir()
    # Hydra's group names are singular (solver=..., operator=..., prior=...): link them to the folders.
    search = Path(__file__).resolve().parent / "conf"
    flags, rest, i = [], [], 0  # Hydra's flags (-m, --cfg job, ...) come first, with their values
    while i < len(argv):
        if argv[i].startswith("-"):
            flags.append(argv[i])
            if argv[i] in _VALUE_FLAGS and i + 1 < len(argv) and "=" not in argv[i + 1]:
                flags.append(argv[i + 1])
                i += 1
        else:
            rest.append(argv[i])
        i += 1
    overrides = flags + [f"hydra.searchpath=[file://{_group_root(groups)}]"] + rest
    code = {"value": 0}

    @hydra.main(config_path=str(search), config_name="config", version_base=None)
    def _app(cfg: DictConfig) -> None:
        from .errors import CapabilityError, UnsupportedProblemError
        from .priors.loading import CheckpointError

        expected = (UserError, CheckpointError, UnsupportedProblemError, CapabilityError)
        try:
            run(cfg)
        except Exception as err:  # Hydra wraps errors raised while instantiating a preset
            cause = err if isinstance(err, expected) else err.__cause__
            if not isinstance(cause, expected):
                raise
            print(f"error: {cause}", file=sys.stderr)
            code["value"] = 2

    saved = sys.argv
    sys.argv = [saved[0]] + overrides
    try:
        _app()
    finally:
        sys.argv = saved
    return code["value"]


def _group_root(groups: Path) -> Path:
    """A folder whose ``solver/``, ``operator/``, ``prior/`` point at the preset folders."""
    import tempfile

    root = Path(tempfile.gettempdir()) / f"invprob-hydra-{abs(hash(str(groups)))}"
    root.mkdir(exist_ok=True)
    for singular, plural in (("solver", "solvers"), ("operator", "operators"), ("prior", "priors")):
        link = root / singular
        if not link.exists():
            link.symlink_to(groups / plural, target_is_directory=True)
    return root
