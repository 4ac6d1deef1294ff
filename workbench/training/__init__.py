"""Train the two demo melanoma-vs-nevus classifiers that ship in ``resources/models``.
(The chest X-ray victim and surrogate: ``python -m workbench.training.cxr_models``, see
that module; both share ``train.train_one``.)

Run as ``python -m workbench.training [--data DIR] [--out resources/models]
[--epochs N] [--threads 2]``. It writes

* ``demo_melanoma.pt`` + ``demo_melanoma.json``: the *victim*, trained on the whole
  training split (init seed 0);
* ``demo_surrogate.pt`` + ``demo_surrogate.json``: an independently trained *surrogate*
  for black-box transfer attacks (as in Finlayson et al., Science 2019): a different
  init seed (1) and a different subset of the data, a seeded stratified half of the
  training split (data seed 1).

Why it is built the way it is (data.py: the images and the split; train.py: the
network and its training; metrics.py: what the cards record; cards.py: the shipped
files; __main__.py: the command line):

* **Data.** The 200 CC0 ISIC dermoscopy photographs in ``../shared/data/dermoscopy/isic``
  (100 melanoma, 100 nevus). Nothing can be downloaded here, so the networks are
  torchvision architectures with ``weights=None``, trained from scratch. With 140
  training images that gives a weak model; it exists to demonstrate attacks, not to
  diagnose anything, and its card says so.
* **Split.** Fixed, seeded (seed 0), by image, stratified: 70 % train / 30 % test
  (70 + 30 per class). Both models are evaluated on the same 60 test images; the card
  lists every ISIC id so the split can be audited and re-measured (tests do).
* **Architecture.** ``mobilenet_v3_small`` (about 6 MB as float32): small enough to
  ship, fast enough to train on two CPU cores in minutes, and a real torchvision
  architecture that :func:`workbench.models.classifier.build_network` rebuilds.
* **Input size 160.** Training cost grows with pixels; 160 px is about half the cost of
  224 and the lesions stay recognisable. The wrapper resizes whatever it is given to
  the card's ``input_size``, so callers never need to know.
* **Preprocessing.** Each JPEG is decoded once with OpenCV, converted to RGB and shrunk
  with ``INTER_AREA`` to 256 px on the short side (uint8 in memory). Evaluation feeds
  that whole image in [0, 1] through the :class:`Classifier` wrapper, which resizes it
  (antialiased bilinear) to 160 x 160 and normalises it. Training crops are shrunk
  with OpenCV's INTER_AREA (also area-averaging, and much cheaper on a CPU), and a crop
  of the whole image reproduces the evaluation geometry (the same aspect squash).
* **Augmentation.** The data set is tiny, so every epoch sees new views: random resized
  crops (35-100 % of the area, aspect within 3/4-4/3 of the image's own), horizontal and
  vertical flips and rotations by 90 degrees (dermoscopy has no canonical orientation),
  and *mild* brightness / contrast / saturation jitter (colour is diagnostic, so no hue
  shift).
* **Optimisation.** AdamW (decoupled weight decay regularises a from-scratch net) with a
  linear warm-up and a cosine decay, label smoothing 0.1 (discourages over-confident
  fits to 140 images). The surrogate has half the images, so it gets twice the epochs:
  both models take the same number of optimiser steps.
* **Precise BatchNorm.** After the last epoch the BN running statistics are recomputed
  as exact averages over five augmented passes of the training images (mobilenet_v3's
  BN momentum is 0.01, far too slow for a few hundred steps from scratch: a first trial
  without this predicted "nevus" for every test image).
* **Reproducibility.** Python, NumPy and torch are seeded; augmentation draws from one
  seeded NumPy generator; torch runs with deterministic algorithms. The saved model is
  reloaded through :func:`workbench.models.classifier.load_classifier` and the card's
  metrics are measured on *that*, so the shipped files provably give the card's numbers.
"""
