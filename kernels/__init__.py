"""The CUDA C sources (*.cu), installed as package data under the name `minicnn.kernels`."""
