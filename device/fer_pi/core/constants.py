"""Choices that several stages and the settings share."""

PRIVACY = ("off", "pixelate", "no_picture")  # what the board shows of a face
ROTATIONS = (0, 90, 180, 270)  # degrees clockwise: a camera's or a screen's
