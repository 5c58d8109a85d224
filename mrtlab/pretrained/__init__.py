"""The pretrained networks mrtlab reads but does not train, and their files: the ImageNet
backbones of LPIPS, DISTS and FID, and the TAEF2 autoencoder that models in its latent wrap."""
