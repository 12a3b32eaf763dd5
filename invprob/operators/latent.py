"""The measurement model a latent solver sees: ``y = A(D(z)) + n`` (an image-space operator
through the decoder of a latent prior)."""

from __future__ import annotations

from typing import Callable

from torch import Tensor

from .base import Operator

__all__ = ["LatentOperator"]


class LatentOperator(Operator):
    """``z ↦ A(D(z))``: an image-space operator seen from the latent space of an autoencoder.

    Every latent solver measures through this one wrapper, so that ``y``, the noise model and the
    operator stay those of the image-space :class:`~invprob.Problem`, and a pixel solver run on it
    with the latent denoiser is the "latent" variant of that solver (latent DPS, latent DAPS).
    The decoder is called inside ``forward`` (and differentiated through where a solver takes
    gradients); the solvers that also need the image operator itself (PSLD's gluing term,
    ReSample's pixel-space consistency) reach it as ``image_operator`` and the autoencoder as
    ``encode`` / ``decode``.

    Shapes: ``z (B, *latent_shape) -> y (B, *y_shape)``; ``decode (B, *latent_shape) -> (B,
    *image_shape)`` in the image operator's units (images in [-1, 1] for the shipped priors).

    Args:
        operator: the image-space forward model ``A``.
        decode: ``D``, latents to images (e.g. :meth:`invprob.priors.LatentPrior.decode`).
        latent_shape: ``(C, h, w)`` of the latents.
        encode: ``E``, images to latents (optional; PSLD and ReSample need it).

    Not linear (the decoder is not, in general), even when ``A`` is; ``differentiable`` and
    ``black_box`` are those of ``A`` (the decoder is a torch module). ``decoder_calls`` and
    ``encoder_calls`` count the batched calls of ``decode`` / ``encode`` (``forward`` included);
    :meth:`invprob.solvers.Solver.solve` reports them per sample.
    """

    linear = False
    has_svd = False

    def __init__(self, operator: Operator, decode: Callable[[Tensor], Tensor], latent_shape: tuple[int, ...],
                 encode: Callable[[Tensor], Tensor] | None = None) -> None:
        if not isinstance(operator, Operator):
            raise TypeError(f"`operator` must be an invprob.operators.Operator, got {type(operator).__name__}.")
        if isinstance(operator, LatentOperator):
            raise TypeError("`operator` is already a LatentOperator; pass the image-space operator.")
        super().__init__(latent_shape, operator.y_shape)
        self.image_operator = operator
        self._decode, self._encode = decode, encode
        self.differentiable, self.black_box = operator.differentiable, operator.black_box
        self.complex_output = operator.complex_output
        self.decoder_calls = self.encoder_calls = 0

    def forward(self, z: Tensor) -> Tensor:
        return self.image_operator(self.decode(z))

    def decode(self, z: Tensor, count: bool = True) -> Tensor:
        """``D(z)``: latents ``(B, *latent_shape)`` to images ``(B, *image_shape)`` (``count=False``:
        not counted in ``decoder_calls``, e.g. a progress display)."""
        self.decoder_calls += int(count)
        return self._decode(z)

    @property
    def has_encoder(self) -> bool:
        return self._encode is not None

    def encode(self, x: Tensor) -> Tensor:
        """``E(x)``: images to latents (raises where no encoder was given)."""
        if self._encode is None:
            raise ValueError("this LatentOperator has no encoder; build it with `encode=` (the latent prior's).")
        self.encoder_calls += 1
        return self._encode(x)
