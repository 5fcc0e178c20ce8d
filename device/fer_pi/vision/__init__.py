"""From a frame to labelled faces: records, detector, face preparation, classifier, model
files, tracker, smoother, and the pipeline that chains them."""
