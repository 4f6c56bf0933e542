"""The block grid keeps the 0.4.x ``Blocks`` API that pipelines iterate with."""

from __future__ import annotations

import numpy as np

from split_dataset import Blocks


def test_block_size_and_number_agree():
    by_size = Blocks((100, 20, 40, 10), shape_block=(100, 10, 20, 10))
    by_number = Blocks((100, 20, 40, 10), blocks_number=(2, 2), dim_split=(1, 2))
    assert by_size.shape_block == by_number.shape_block == (100, 10, 20, 10)
    assert by_size.n_blocks == 4


def test_slices_cover_the_array_in_c_order():
    blocks = Blocks((10, 7), shape_block=(4, 5))
    covered = np.zeros((10, 7), dtype=int)
    order = []
    for index, slices in blocks.slices():
        covered[slices] += 1
        order.append(index)
    assert (covered == 1).all()
    assert order == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    assert list(blocks.slices(as_tuples=True))[-1] == ((2, 1), ((8, 10), (5, 7)))


def test_padding_extends_blocks_and_changes_their_number():
    blocks = Blocks((8, 30, 26), shape_block=(4, 12, 13), padding=(1, 2, 2))
    assert blocks.blocks_grid == (2, 3, 2)
    assert blocks[0] == (slice(0, 5), slice(0, 14), slice(0, 15))
    assert blocks[11] == (slice(4, 8), slice(24, 30), slice(13, 26))


def test_linear_cartesian_round_trip_and_neighbours():
    blocks = Blocks((6, 6, 6), shape_block=(3, 2, 3))
    for linear in range(blocks.n_blocks):
        assert blocks.cartesian_to_linear(blocks.linear_to_cartesian(linear)) == linear
    assert blocks.linear_to_cartesian(11) == (1, 2, 1)
    assert sorted(blocks.neighbour_blocks(0).tolist()) == [1, 2, 3, 6, 7, 8, 9]


def test_serialize_and_setters():
    blocks = Blocks((10, 4), shape_block=(3, 4))
    assert blocks.serialize() == dict(
        shape_full=[10, 4], shape_block=[3, 4], crop_start=[0, 0], crop_end=[0, 0], padding=[0, 0]
    )
    blocks.shape_full = (12, 4)
    assert blocks.n_blocks == 4
    assert Blocks.block_to_slices(((1, 2), (3, 4))) == (slice(1, 2), slice(3, 4))
    assert blocks.drop_dim(1).shape_full == (12,)
