"""Datasets as distributed (CIFAR-10/100 pickles, ImageNet16 pickle/npz, Fashion-MNIST IDX) and scikit-learn's
bundled data, as numpy arrays and normalized torch tensors."""
from rayneas.data.arrays import DataError, ImageArrays
from rayneas.data.batch import image_batch
from rayneas.data.cifar import load_cifar
from rayneas.data.embedded import DigitsSplit, digits_split, sample_image_crops
from rayneas.data.idx import DEBIAN_FASHION_MNIST, check_fashion_mnist, load_fashion_mnist, read_idx
from rayneas.data.imagenet16 import load_imagenet16
from rayneas.data.tensors import to_tensor

__all__ = [
    "DEBIAN_FASHION_MNIST",
    "DataError",
    "DigitsSplit",
    "ImageArrays",
    "check_fashion_mnist",
    "digits_split",
    "image_batch",
    "load_cifar",
    "load_fashion_mnist",
    "load_imagenet16",
    "read_idx",
    "sample_image_crops",
    "to_tensor",
]
