"""Forward operators (contract 3 of ``docs/design.md``): one file per modality."""

from .base import SVD, LinearOperator, Operator
from .blackbox import BlackBox
from .ct import CT, TransmissionCT, ct_angles
from .blur import GaussianBlur, KernelBlur, MotionBlur, gaussian_kernel, load_kernel, motion_kernel
from .deepinv_bridge import FromDeepinv, to_deepinv
from .inpainting import Inpainting
from .latent import LatentOperator
from .matrix import Identity, MatrixOperator
from .mri import MRI, MultiCoilMRI, estimate_coil_maps, mri_mask
from .phase_retrieval import CodedDiffraction, PhaseRetrieval
from .super_resolution import SuperResolution
from .volume import SliceStack

__all__ = ["Operator", "LinearOperator", "SVD", "MatrixOperator", "Identity", "BlackBox",
           "KernelBlur", "GaussianBlur", "MotionBlur", "gaussian_kernel", "motion_kernel", "load_kernel",
           "Inpainting", "SuperResolution", "MRI", "MultiCoilMRI", "mri_mask", "estimate_coil_maps",
           "PhaseRetrieval", "CodedDiffraction", "FromDeepinv", "to_deepinv", "LatentOperator",
           "CT", "TransmissionCT", "ct_angles", "SliceStack"]
