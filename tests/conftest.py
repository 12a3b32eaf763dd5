import ast
import importlib.util
import os
import pathlib
import sys

import pytest
import torch

# The shared real data (../shared/data next to the repository, or $INVPROB_DATA).
DATA = pathlib.Path(os.environ.get("INVPROB_DATA", pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"))
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared data not found at {DATA} (set INVPROB_DATA)")
# The package finds data only through $INVPROB_DATA (or the user's cache): point it here.
if DATA.is_dir():
    os.environ.setdefault("INVPROB_DATA", str(DATA))


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


def small_gmm(d_shape=(1, 2, 2), K=3, seed=0, dtype=torch.float64):
    """A small random GMM with full-rank covariances (for brute-force checks)."""
    from invprob.priors import GaussianMixturePrior

    g = torch.Generator().manual_seed(seed)
    d = int(torch.tensor(d_shape).prod())
    w = torch.rand(K, generator=g, dtype=dtype) + 0.3
    means = torch.randn((K, *d_shape), generator=g, dtype=dtype)
    L = torch.randn((K, d, d), generator=g, dtype=dtype) * 0.5
    covs = L @ L.transpose(1, 2) + 0.1 * torch.eye(d, dtype=dtype)
    return GaussianMixturePrior(w / w.sum(), means, covs)


def tiny_unet(out_channels=1):
    """A small random diffusers ``UNet2DModel`` on 1×8×8 images (float32), for network-prior paths."""
    from diffusers import UNet2DModel

    torch.manual_seed(0)
    return UNet2DModel(sample_size=8, in_channels=1, out_channels=out_channels, block_out_channels=(8, 16),
                       layers_per_block=1, down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4)


def load_benchmark(name: str):
    """The driver ``benchmarks/<name>.py`` loaded as a module ``benchmark_<name>`` (the drivers
    are scripts, not a package). The sibling drivers it imports by plain name, as a script does
    from its own folder, are loaded first and stand under those names only while it executes."""
    key = f"benchmark_{name}"
    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    if key in sys.modules:
        return sys.modules[key]
    siblings = {node.module: load_benchmark(node.module) for node in ast.parse(path.read_text()).body
                if isinstance(node, ast.ImportFrom) and node.module and (path.parent / f"{node.module}.py").is_file()}
    spec = importlib.util.spec_from_file_location(key, path)
    module = importlib.util.module_from_spec(spec)
    saved = {sibling: sys.modules.get(sibling) for sibling in siblings}
    sys.modules.update(siblings)
    try:
        spec.loader.exec_module(module)
    finally:
        for sibling, previous in saved.items():
            if previous is None:
                sys.modules.pop(sibling, None)
            else:
                sys.modules[sibling] = previous
    sys.modules[key] = module
    return module

# The user's own presets (invprob.registry.user_config_dir) stay out of the tests: an empty folder.
os.environ["INVPROB_CONFIG"] = __import__("tempfile").mkdtemp(prefix="invprob-test-config-")


from invprob.operators import LinearOperator  # noqa: E402  (after INVPROB_DATA is set)


class DenseWithoutSVD(LinearOperator):
    """A dense matrix seen only through forward and adjoint (no SVD, no pinv)."""

    def __init__(self, A, x_shape):
        super().__init__(x_shape)
        self.register_buffer("A", A)

    def forward(self, x):
        return x.flatten(1) @ self.A.T

    def adjoint(self, y):
        return (y @ self.A).reshape(-1, *self.x_shape)
