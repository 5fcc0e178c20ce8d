"""Host-side tools for fer-pi: train, convert and evaluate FER2013 models.

TensorFlow is imported lazily inside the commands that need it, so that
``fer-eval`` on a ``.tflite`` model works without the ``train`` extra.
"""
