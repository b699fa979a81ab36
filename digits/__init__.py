"""The contract that training and serving share: image -> canonical digit -> model input -> model.

Imports neither FastAPI nor Keras training code, so both sides depend on it and never on each other:
`contract` (shape, scale and classes of the model's input and output), `canonicalize` (MNIST's
normalization of a digit), `model_store` (the versioned model folder and its card), `model` (loading
an exported SavedModel; the only module here that imports TensorFlow) and `errors` (the domain
errors, each with a stable code and no HTTP status).
"""
