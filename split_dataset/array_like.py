"""What a dataset, a view and a stack of channels share: the array surface NumPy and users see,
built on ``shape``, ``dtype`` and ``read(key, out=, threads=)``."""

from __future__ import annotations

from typing import Any

import numpy as np


class ArrayLike:
    """``ndim``, ``size``, ``nbytes``, ``len()``, ``x[key]`` and ``np.asarray(x)`` for classes
    that define ``shape``, ``dtype`` and ``read``."""

    @property
    def shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    @property
    def dtype(self) -> np.dtype:
        raise NotImplementedError

    def read(
        self, key: Any = (), out: np.ndarray | None = None, threads: int | None = None
    ) -> np.ndarray:
        raise NotImplementedError

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError(f"len() of a 0-d {type(self).__name__}")
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        return self.read(key)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """NumPy's protocol: the whole array, read into new memory (``np.asarray(x)``).
        ``copy=False`` asks for no copy, which data on disk cannot give: ``ValueError``, as
        NumPy 2 expects (and h5py does)."""
        if copy is False:
            raise ValueError(
                f"a {type(self).__name__} cannot be turned into an array without a copy: its "
                f"data is on disk (use np.asarray(x), or np.array(x, copy=None))"
            )
        data = self.read(...)
        return data if dtype is None else data.astype(dtype, copy=False)
