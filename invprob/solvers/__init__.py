"""Posterior samplers on the common step API, one file per method (contract 4 of ``docs/design.md``)."""

from .base import SolveResult, Solver, State, Tunable
from .daps import DAPS
from .ddnm import DDNM
from .ddrm import DDRM
from .diffpir import DiffPIR
from .diffusion_mbir import ZTV, DiffusionMBIR, SliceCoupled
from .dps import DPS
from .d_flow import DFlow
from .enkg import EnKG
from .flowchef import FlowChef
from .latent import PSLD, LatentDAPS, LatentSolver
from .smc import TemperedSMC
from .tds import TDS
from .mcg import MCG
from .mmps import MMPS
from .ot_ode import OTODE
from .pigdm import PiGDM
from .pnp_flow import PnPFlow
from .reddiff import REDDiff
from .resample import ReSample
from .stsl import STSL

__all__ = ["Solver", "State", "SolveResult", "Tunable", "DPS", "MCG", "REDDiff", "DAPS", "DDNM", "DDRM", "DiffPIR", "EnKG", "TemperedSMC",
           "PiGDM", "MMPS", "TDS", "FlowChef", "PnPFlow", "OTODE", "DFlow",
           "LatentSolver", "LatentDAPS", "PSLD", "ReSample", "STSL", "DiffusionMBIR", "SliceCoupled", "ZTV"]
