"""Model architectures by name. Inference graphs only: augmentation lives in the
input pipeline (train.py), because Keras Random* layers leave ops in the graph
that the TFLite converter cannot take."""

from __future__ import annotations

from collections.abc import Callable

# Pixels arrive as 0..255 floats. The paper rescales to 0..1, but with the
# paper's layers and Keras' default initializers that net stays at the
# majority class; zero-centred input with He-normal init learns (shared NOTES).
# Keeping the rescaling inside the model makes the int8 input plain pixels.
INPUT_SCALE = 1.0 / 64.0
INPUT_OFFSET = -2.0


def seed(dropout: tuple[float, float, float] = (0.25, 0.25, 0.5)):
    """The design paper's CNN: 879,623 parameters, layer for layer."""
    from keras import layers, models

    conv = dict(activation="relu", kernel_initializer="he_normal")
    return models.Sequential(
        [
            layers.Input((48, 48, 1), name="image"),
            layers.Rescaling(INPUT_SCALE, offset=INPUT_OFFSET),
            layers.Conv2D(32, 3, padding="valid", **conv),  # 46
            layers.Conv2D(64, 3, **conv),  # 44
            layers.MaxPooling2D(2),  # 22
            layers.Dropout(dropout[0]),
            layers.Conv2D(64, 3, **conv),  # 20
            layers.Conv2D(64, 3, **conv),  # 18
            layers.Conv2D(128, 3, padding="same", **conv),  # 18
            layers.MaxPooling2D(3, strides=2),  # 8
            layers.Conv2D(128, 3, **conv),  # 6
            layers.Conv2D(256, 3, **conv),  # 4
            layers.MaxPooling2D(2),  # 2
            layers.MaxPooling2D(2),  # 1
            layers.Dropout(dropout[1]),
            layers.Flatten(),
            layers.Dense(1024, **conv),
            layers.Dropout(dropout[2]),
            layers.Dense(7),
            # float32 softmax so that mixed_bfloat16 training keeps exact probabilities
            layers.Activation("softmax", dtype="float32", name="probs"),
        ],
        name="seed",
    )


def vgg(widths: tuple[int, ...] = (32, 64, 128, 256), convs: tuple[int, ...] = (2, 2, 3, 3),
        dropout: float = 0.3):
    """A compact VGG-style net (after Pramerdorfer & Kampel 2016, whose 10-layer VGG at
    48x48 is within a point of far larger nets): 3x3 conv + batch norm + ReLU blocks,
    max-pooling between them, global average pooling, one dense layer. Convolutions have
    no bias, so each batch norm folds into the conv before it in the int8 model.
    Defaults: about 1.6 M parameters, 1.6x the seed's multiply-accumulates."""
    from keras import layers, models

    net = [layers.Input((48, 48, 1), name="image"),
           layers.Rescaling(INPUT_SCALE, offset=INPUT_OFFSET)]
    for i, (w, n) in enumerate(zip(widths, convs, strict=True)):
        for _ in range(n):
            net += [layers.Conv2D(w, 3, padding="same", use_bias=False,
                                  kernel_initializer="he_normal"),
                    layers.BatchNormalization(), layers.ReLU()]
        if i < len(widths) - 1:
            net.append(layers.MaxPooling2D(2))
    net += [layers.GlobalAveragePooling2D(), layers.Dropout(dropout), layers.Dense(7),
            layers.Activation("softmax", dtype="float32", name="probs")]
    return models.Sequential(net, name="vgg")


def tiny_bn():
    """tiny with batch normalization: tests that BN folds away in the int8 model."""
    from keras import layers, models

    return models.Sequential(
        [
            layers.Input((48, 48, 1), name="image"),
            layers.Rescaling(INPUT_SCALE, offset=INPUT_OFFSET),
            layers.Conv2D(8, 3, strides=2, use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.GlobalAveragePooling2D(),
            layers.Dense(7),
            layers.Activation("softmax", dtype="float32", name="probs"),
        ],
        name="tiny_bn",
    )


def tiny():
    """A few-thousand-parameter net for smoke tests and CI; not for shipping."""
    from keras import layers, models

    return models.Sequential(
        [
            layers.Input((48, 48, 1), name="image"),
            layers.Rescaling(INPUT_SCALE, offset=INPUT_OFFSET),
            layers.Conv2D(8, 3, strides=2, activation="relu"),
            layers.Conv2D(16, 3, strides=2, activation="relu"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(7),
            layers.Activation("softmax", dtype="float32", name="probs"),
        ],
        name="tiny",
    )


ARCHS: dict[str, Callable] = {"seed": seed, "vgg": vgg, "tiny": tiny, "tiny_bn": tiny_bn}


def build(name: str, **kwargs):
    if name not in ARCHS:
        raise ValueError(f"unknown architecture {name!r}; choose from {', '.join(ARCHS)}")
    return ARCHS[name](**kwargs)
