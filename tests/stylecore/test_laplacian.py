"""The matting Laplacian's defining properties, and agreement with a naive per-window build."""

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg

from stylecore.laplacian import apply_laplacian, laplacian_stencil, matting_laplacian, stencil_offsets


def naive_matting_laplacian(image: np.ndarray, epsilon: float, radius: int = 1) -> np.ndarray:
    """Levin et al. (2006), eq. 12, window by window, as a dense matrix."""
    height, width, _ = image.shape
    size = 2 * radius + 1
    count = size * size
    laplacian = np.zeros((height * width, height * width))
    for y in range(radius, height - radius):
        for x in range(radius, width - radius):
            rows, cols = np.mgrid[y - radius:y + radius + 1, x - radius:x + radius + 1]
            indices = (rows * width + cols).ravel()
            colours = image[rows, cols].reshape(count, 3)
            centred = colours - colours.mean(axis=0)
            covariance = centred.T @ centred / count
            inverse = np.linalg.inv(covariance + epsilon / count * np.eye(3))
            block = np.eye(count) - (1.0 + centred @ inverse @ centred.T) / count
            laplacian[np.ix_(indices, indices)] += block
    return laplacian


def test_equals_naive_construction_on_tiny_image():
    image = np.random.default_rng(3).uniform(size=(6, 7, 3))
    built = matting_laplacian(image, epsilon=1e-5).toarray()
    np.testing.assert_allclose(built, naive_matting_laplacian(image, 1e-5), atol=1e-8)


def test_symmetric_zero_row_sums_and_positive_semidefinite():
    image = np.random.default_rng(4).uniform(size=(12, 10, 3))
    laplacian = matting_laplacian(image)
    assert scipy.sparse.issparse(laplacian)
    assert abs(laplacian - laplacian.T).max() < 1e-9
    np.testing.assert_allclose(laplacian @ np.ones(laplacian.shape[0]), 0.0, atol=1e-8)
    smallest = np.linalg.eigvalsh(laplacian.toarray()).min()
    assert smallest >= -1e-8


def test_sparse_with_25_entries_per_interior_pixel(example_pair):
    content = example_pair(1, 128).content
    laplacian = matting_laplacian(content)
    assert laplacian.shape == (content.shape[0] * content.shape[1],) * 2
    assert laplacian.getnnz(axis=1).max() == 25
    assert laplacian.has_sorted_indices


def test_locally_affine_recolouring_has_near_zero_energy(example_pair):
    content = example_pair(2, 96).content.astype(np.float64)
    laplacian = matting_laplacian(content)
    recoloured = content @ np.array([[0.6, 0.2, 0.1], [0.1, 0.7, 0.0], [0.0, 0.1, 0.5]]) + 0.1
    noisy = recoloured + np.random.default_rng(5).normal(0, 0.05, recoloured.shape)
    def energy(image: np.ndarray) -> float:
        pixels = image.reshape(-1, 3)
        return float(np.sum(pixels * (laplacian @ pixels)))

    assert energy(recoloured) < 1e-3 * energy(noisy)


@pytest.mark.parametrize("radius", [1, 2])
def test_stencil_multiplies_as_the_sparse_matrix(radius):
    rng = np.random.default_rng(7)
    content, image = rng.uniform(size=(2, 13, 9, 3))
    laplacian = matting_laplacian(content, radius=radius)
    stencil = laplacian_stencil(laplacian, (13, 9), radius=radius)
    assert stencil.shape == ((4 * radius + 1) ** 2, 32, 32)  # padded to the bucket, with zeros
    assert not stencil[:, 13:].any() and not stencil[:, :, 9:].any()
    expected = (laplacian @ image.reshape(-1, 3)).reshape(image.shape)
    product = apply_laplacian(stencil, image.astype(np.float32)).numpy()
    np.testing.assert_allclose(product, expected, rtol=1e-5, atol=1e-4)


def test_a_photo_narrower_than_the_offsets_reach_has_all_of_them_and_a_wider_window_is_refused():
    # a 3x4 photo's Laplacian reaches at most 2 and 3 pixels: its stencil still has the 25 maps of
    # radius 1 (zeros where no neighbour is), so both stages keep one program whatever the size
    laplacian = matting_laplacian(np.random.default_rng(9).uniform(size=(3, 4, 3)), radius=1)
    stencil = laplacian_stencil(laplacian, (3, 4), radius=1)
    assert stencil.shape[0] == stencil_offsets(1) == 25
    image = np.random.default_rng(10).uniform(size=(3, 4, 3))
    expected = (laplacian @ image.reshape(-1, 3)).reshape(image.shape)
    np.testing.assert_allclose(apply_laplacian(stencil, image.astype(np.float32)).numpy(), expected,
                               rtol=1e-5, atol=1e-4)
    wider = matting_laplacian(np.random.default_rng(11).uniform(size=(13, 9, 3)), radius=2)
    with pytest.raises(ValueError, match="reaches farther than windows of radius 1"):
        laplacian_stencil(wider, (13, 9), radius=1)


def test_stencil_refuses_a_laplacian_of_another_size():
    laplacian = matting_laplacian(np.random.default_rng(8).uniform(size=(6, 5, 3)))
    with pytest.raises(ValueError, match="does not fit"):
        laplacian_stencil(laplacian, (5, 6 + 1), radius=1)
