"""A synthetic calcium-imaging recording: deterministic, image-like uint16; NumPy only.

Per plane a smooth "anatomy" (a brain-shaped mask with multi-scale texture), a few hundred
cells per plane whose fluorescence follows sparse transients (spikes convolved with a GCaMP-like
exponential decay), Poisson shot noise and a camera offset. That compresses about 1.7-1.8x with
PyTables' default blosc (blosclz, level 9, shuffle), like real light-sheet recordings. One time
point (``T // 2``) is pure uniform noise instead, so that blosc stores its chunks raw (the
memcpy path of the decoder).

The first axis is time and the last two are a plane; the axes between are flattened into a
sequence of planes (z, or channel x z), so any shape of 1 to N dimensions works: a 2-D
``(T, X)`` recording is a movie of one-row planes, a 1-D one of single pixels.

Used by ``split-dataset demo`` and by the benchmarks (``benchmarks/data.py`` caches it); it
imports nothing from the package, so the benchmarks can load it by file path.
"""

from __future__ import annotations

import numpy as np


def noise_time_point(shape: tuple[int, ...]) -> int:
    """The time point that holds pure noise."""
    return shape[0] // 2


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur through the FFT (periodic borders; NumPy only)."""
    fy = np.fft.fftfreq(image.shape[0])[:, None]
    fx = np.fft.rfftfreq(image.shape[1])[None, :]
    transfer = np.exp(-2 * (np.pi * sigma) ** 2 * (fy**2 + fx**2))
    return np.fft.irfft2(np.fft.rfft2(image) * transfer, s=image.shape).astype(np.float32)


def _plane_movie(rng: np.random.Generator, T: int, Y: int, X: int, z: int, Z: int) -> np.ndarray:
    """Expected photon counts (T, Y, X) float32 of one plane: anatomy + cells with transients."""
    yy, xx = np.mgrid[0:Y, 0:X]
    # brain outline: an ellipse shrinking towards the first and last planes
    zr = 1 - 0.5 * ((z - (Z - 1) / 2) / max(Z / 2, 1)) ** 2
    cy = Y * (0.5 + 0.03 * rng.standard_normal())
    cx = X * (0.5 + 0.03 * rng.standard_normal())
    ry, rx = 0.42 * Y * zr, 0.30 * X * zr
    mask = ((((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2) < 1).astype(np.float32)
    mask = _blur(mask, max(Y, X) / 64)
    texture = np.zeros((Y, X), np.float32)
    for sigma, gain in ((max(Y, X) / 16, 1.0), (max(Y, X) / 64, 0.6), (1.5, 0.3)):
        field = _blur(rng.standard_normal((Y, X)).astype(np.float32), sigma)
        texture += gain * field / (field.std() + 1e-9)
    anatomy = 10 + mask * np.clip(300 + 120 * texture, 20, None)

    # cells: gaussian footprints (7 x 7 pixels) inside the brain
    n = int(Y * X / 300 * zr)
    ys, xs = rng.uniform(0, Y, n), rng.uniform(0, X, n)
    keep = mask[ys.astype(int), xs.astype(int)] > 0.5
    ys, xs = ys[keep], xs[keep]
    n = len(ys)
    offsets = np.arange(-3, 4)
    py = np.rint(ys)[:, None, None].astype(int) + offsets[None, :, None]  # (n, 7, 1)
    px = np.rint(xs)[:, None, None].astype(int) + offsets[None, None, :]  # (n, 1, 7)
    weight = np.exp(-((py - ys[:, None, None]) ** 2 + (px - xs[:, None, None]) ** 2) / (2 * 1.8**2))
    inside = (py >= 0) & (py < Y) & (px >= 0) & (px < X)
    footprint = len(offsets) ** 2
    pixel = np.where(inside, np.clip(py, 0, Y - 1) * X + np.clip(px, 0, X - 1), 0)
    pixel = pixel.reshape(n, footprint)
    weight = np.where(inside, weight, 0).reshape(n, footprint)
    # sparse transients: spikes (1 % of frames) convolved with an exponential decay
    baseline = rng.uniform(100, 400, n).astype(np.float32)
    spikes = (rng.random((n, T)) < 0.01) * rng.exponential(1.5, (n, T))
    activity = np.zeros((n, T), np.float32)
    for k, value in enumerate(np.exp(-np.arange(min(T, 30)) / 4.0)):
        activity[:, k:] += value * spikes[:, : T - k]
    traces = baseline[:, None] * (1 + activity)  # (n, T)
    movie = np.empty((T, Y, X), np.float32)
    flat_pixels = pixel.ravel()
    for t in range(T):
        cells = np.bincount(
            flat_pixels, weights=(weight * traces[:, t : t + 1]).ravel(), minlength=Y * X
        )
        movie[t] = anatomy + cells.reshape(Y, X)
    return movie


def synthetic_recording(
    shape: tuple[int, ...], seed: int = 0, brightness: float = 2.0, offset: int = 100
) -> np.ndarray:
    """The recording of ``shape`` (time first): photons = brightness x movie, counts = offset +
    Poisson, and pure noise at ``noise_time_point(shape)``. The same seed and shape give the
    same array on every machine."""
    shape = tuple(int(s) for s in shape)
    if not shape:
        raise ValueError("a recording has at least one axis (time)")
    if len(shape) >= 3:
        T, Y, X = shape[0], shape[-2], shape[-1]
    else:  # (T, X) or (T,): planes of one row, or of one pixel
        T, Y, X = shape[0], 1, shape[1] if len(shape) == 2 else 1
    Z = int(np.prod(shape[1:-2])) if len(shape) >= 3 else 1
    rng = np.random.default_rng(seed)
    out = np.empty((T, Z, Y, X), np.uint16)
    if out.size:
        for z in range(Z):
            # tiny planes: the blurred outline rings below zero at its edges
            photons = np.maximum(_plane_movie(rng, T, Y, X, z, Z) * brightness, 0)
            out[:, z] = np.minimum(offset + rng.poisson(photons), 65535)
        out[noise_time_point(shape)] = rng.integers(0, 65536, size=(Z, Y, X), dtype=np.uint16)
    return out.reshape(shape)
