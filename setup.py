"""Package list for setuptools (everything else is in pyproject.toml): every minicnn* package, plus
`minicnn.kernels`, which is the top-level kernels/ folder of CUDA sources shipped as package data."""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["minicnn*"]) + ["minicnn.kernels"],
    package_dir={"minicnn.kernels": "kernels"},
)
