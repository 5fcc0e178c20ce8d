"""The FER2013 class order, the one fact every model in this project shares.

Models may carry their own label list in their metadata; this is the default
and the order the training data uses.
"""

LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
