"""minicnn.data: datasets, transforms and a threaded DataLoader, all producing NumPy arrays.

    from minicnn.data import PneumoniaMNIST, DataLoader, train_test_split, class_weights
    from minicnn.data import transforms as T
    train = PneumoniaMNIST("train", size=28, transform=T.Compose([T.RandomAffine(10), T.ToArray()]))
    for images, labels in DataLoader(train, batch_size=64, shuffle=True, seed=0, num_workers=2):
        ...  # images (64, 1, 28, 28) float32, labels (64,) int64
"""
from . import transforms
from .balance import WeightedRandomSampler, class_weights, oversample
from .checks import check_images, check_labels, check_split_folder
from .collate import default_collate
from .dataset import ConcatDataset, Dataset, Subset, get_targets
from .download import download_url, md5sum
from .errors import DataError, DownloadError, MissingArrayError, SampleError
from .folder import IMG_EXTENSIONS, ImageFolder, ImageLoadError, load_image
from .loader import DataLoader
from .medmnist import PneumoniaMNIST, default_root, verify_file
from .npz import NpzDataset
from .phantom import PhantomDataset, make_phantoms  # synthetic stand-in images, no download
from .rng import get_rng, make_rng, sample_rng, seed_transforms
from .sources import DataSourceError, DataSplits, pneumonia_splits
from .split import random_split, train_test_split
from .wrappers import WithTransform, balanced_subset

__all__ = [
    "transforms", "Dataset", "Subset", "ConcatDataset", "get_targets", "NpzDataset", "PneumoniaMNIST",
    "PhantomDataset", "make_phantoms", "ImageFolder", "ImageLoadError", "load_image", "IMG_EXTENSIONS",
    "DataLoader", "default_collate",
    "random_split", "train_test_split", "class_weights", "oversample", "WeightedRandomSampler",
    "download_url", "md5sum", "default_root", "get_rng", "make_rng", "sample_rng", "seed_transforms",
    "DataError", "DownloadError", "MissingArrayError", "SampleError", "check_labels", "check_split_folder",
    "check_images", "verify_file",
    "WithTransform", "balanced_subset", "pneumonia_splits", "DataSplits", "DataSourceError",
]
