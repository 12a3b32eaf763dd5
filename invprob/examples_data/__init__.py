"""Small example inputs shipped with the package (a fresh clone has no ../shared/data):
``mnist_9503.npy`` — MNIST test image 9503 (held apart from the shipped ``mnist`` prior's
training set), 1×1×32×32 in [-1, 1]."""
