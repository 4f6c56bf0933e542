"""A napari widget: save the region of a recording shown on the canvas as a new split dataset.

The region is what the canvas shows of the layer along the displayed axes (y and x, or z, y
and x in 3-D view), over every time point and every other plane; it is saved through the
crop-saving API (``save_to_split_dataset`` of a view), block by block, so it records where it
came from (``origin``) and never touches the source.
"""

from pathlib import Path
from typing import Annotated, Any

import napari
import numpy as np

from ..view import DatasetView
from ..writer import save_to_split_dataset
from .playback import ReadAheadArray


def visible_region(layer: Any, dims_displayed: tuple[int, ...]) -> tuple[slice, ...]:
    """The layer's data region on the canvas: the visible extent along the displayed axes,
    everything along the others."""
    corners = np.asarray(layer.corner_pixels)  # (2, ndim): first and last visible data pixel
    shape = layer.data.shape
    region = []
    for axis, size in enumerate(shape):
        if axis in dims_displayed:
            low = int(np.clip(corners[0, axis], 0, size))
            high = int(np.clip(corners[1, axis] + 1, low, size))
            region.append(slice(low, max(high, low + 1)))
        else:
            region.append(slice(None))
    return tuple(region)


def crop_of(layer: Any, dims_displayed: tuple[int, ...]) -> DatasetView:
    data = layer.data.dataset if isinstance(layer.data, ReadAheadArray) else layer.data
    if not hasattr(data, "view"):
        raise ValueError(f"layer '{layer.name}' was not opened from a split dataset")
    return data.view[visible_region(layer, dims_displayed)]


def save_crop(
    viewer: napari.Viewer,
    layer: napari.layers.Image,
    destination: Annotated[Path, {"mode": "w", "label": "new folder"}] = Path("cropped"),
) -> Any:
    """Save the region of ``layer`` shown on the canvas as a split dataset at ``destination``
    (a new folder), in the background; napari shows a notification when it is written.
    (Annotations are real types, not strings: magicgui builds the widget from them.)"""
    from napari.qt.threading import thread_worker
    from napari.utils.notifications import show_info

    crop = crop_of(layer, tuple(viewer.dims.displayed))
    destination = Path(destination)

    @thread_worker(connect={"returned": lambda ds: show_info(f"saved {ds.shape} to {ds.root}")})
    def write():
        return save_to_split_dataset(crop, destination.parent, prefix=destination.name)

    return write()
