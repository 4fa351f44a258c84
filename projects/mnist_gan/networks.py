"""The generator and the discriminator of the DCGAN, and the layers of their own.

The generator draws a 28x28 digit from a latent vector (and the digit asked for, when conditional); with
InfoGAN's categorical codes, an unconditional one also reads a code off its latent vector (`CategoricalCode`),
after `CodeShares` has moved that vector to draw the codes in their fitted shares. The discriminator tells
real digits from generated ones (and, with codes, tells the code back); ProGAN's `MinibatchStddev` lets it
see a batch of digits that are too alike.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

LATENT = "latent"


@keras.saving.register_keras_serializable(package="mnist_gan")
class CategoricalCode(layers.Layer):
    """Latent vectors [N, L] -> one of `categories` codes each, read off the first coordinate: the normal
    CDF makes it uniform on (0, 1), so every code is equally likely, and a latent vector carries its own
    code (the served generator still takes latent vectors only)."""

    def __init__(self, categories: int, **kwargs):
        super().__init__(**kwargs)
        self.categories = categories

    def call(self, latent):
        uniform = 0.5 * (1.0 + ops.erf(latent[:, 0] / np.sqrt(2.0)))
        code = ops.minimum(ops.floor(uniform * self.categories), self.categories - 1)
        return ops.cast(code, "int32")

    def compute_output_shape(self, input_shape):
        return (input_shape[0],)

    def get_config(self):
        return {**super().get_config(), "categories": self.categories}


@keras.saving.register_keras_serializable(package="mnist_gan")
class CodeShares(layers.Layer):
    """Latent vectors [N, L] -> latent vectors whose `CategoricalCode` comes in `shares`, not evenly.

    The shares are even while training (the latent vectors pass unchanged, bit for bit), then those
    `GAN.fit_code_shares` finds in the real digits. Code c then takes a slice of the first coordinate's
    normal CDF as wide as its share, and a vector in it is moved to the same place within c's even slice:
    within a code, the generator sees the latent vectors it was trained on."""

    def __init__(self, categories: int, **kwargs):
        super().__init__(**kwargs)
        self.categories = categories
        # autocast=False: under mixed precision a float16 1/K would differ from 1/K and count as fitted
        self.shares = self.add_weight(
            (categories,),
            keras.initializers.Constant(1.0 / categories),
            trainable=False,
            autocast=False,
            name="shares",
        )

    def call(self, latent):
        k = self.categories
        uniform = 0.5 * (1.0 + ops.erf(ops.cast(latent[:, 0], "float64") / np.sqrt(2.0)))
        shares = ops.maximum(ops.cast(self.shares, "float64"), 1e-12)
        shares = shares / ops.sum(shares)
        bounds = ops.concatenate([ops.zeros((1,), "float64"), ops.cumsum(shares)])  # code c: [b_c, b_c+1)
        code = ops.minimum(ops.sum(ops.cast(uniform[:, None] >= bounds[None, 1:-1], "int32"), axis=1), k - 1)
        within = ops.clip((uniform - ops.take(bounds, code)) / ops.take(shares, code), 0.0, 1.0)
        unit = ops.clip((ops.cast(code, "float64") + within) / k, 1e-12, 1.0 - 1e-12)
        first = ops.cast(np.sqrt(2.0) * ops.erfinv(2.0 * unit - 1.0), latent.dtype)
        fitted = ops.max(ops.abs(shares - 1.0 / k)) > 1e-7
        return ops.where(fitted, ops.concatenate([first[:, None], latent[:, 1:]], axis=1), latent)

    def load_own_variables(self, store):
        if len(store) == 0:  # weights saved before the shares existed: the codes stay even, as trained
            return
        super().load_own_variables(store)

    def get_config(self):
        return {**super().get_config(), "categories": self.categories}


@keras.saving.register_keras_serializable(package="mnist_gan")
class MinibatchStddev(layers.Layer):
    """Feature maps [N, H, W, C] -> [N, H, W, C + 1]: the last channel is how much the maps vary across each
    group of `group` consecutive examples (ProGAN's minibatch standard deviation), so the discriminator
    can see a batch of generated digits that are too alike. Groups of consecutive examples make one
    replica's groups the same as on one device whenever its batch divides by `group`; a batch that does
    not gets groups of one (no variation)."""

    def __init__(self, group: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.group = group

    def call(self, maps):
        count = ops.shape(maps)[0]
        group = ops.where(count % self.group == 0, self.group, 1)
        # float32 even under mixed precision: in float16 the 1e-8 below would round to 0
        grouped = ops.reshape(ops.cast(maps, "float32"), (-1, group, *maps.shape[1:]))
        # + 1e-8 under the root, as ProGAN: a feature that is the same across a group (a black border)
        # would otherwise have an infinite gradient
        spread = ops.mean(ops.sqrt(ops.var(grouped, axis=1) + 1e-8), axis=(1, 2, 3))  # [N / group]
        channel = ops.repeat(spread, group, axis=0)[:, None, None, None] * ops.ones_like(
            maps[..., :1], dtype="float32"
        )
        return ops.concatenate([maps, ops.cast(channel, maps.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)

    def get_config(self):
        return {**super().get_config(), "group": self.group}


def build_generator(latent_dim: int, filters: int, conditional: bool, codes: int = 0) -> keras.Model:
    """Latent vectors (and digits) in, images in [-1, 1] [N, 28, 28] out: 7x7 -> 14x14 -> 28x28 -> pixels.

    The last transposed convolution ends in `filters // 2` feature maps at full size, and a 5x5
    convolution draws the pixels from them (as TF-GAN's MNIST generator does), so each pixel is
    decided from a neighbourhood rather than by the upsampling step alone. With `codes`, an unconditional
    generator also gets a categorical code taken from its latent vector, as the digit is given to a
    conditional one (InfoGAN's discrete code; the discriminator learns to tell it back)."""
    latent = keras.Input((latent_dim,), name=LATENT)
    inputs, x = [latent], latent
    if conditional:
        label = keras.Input((), dtype="int32", name="label")
        inputs.append(label)
        x = layers.Concatenate()([latent, layers.Embedding(10, 16)(label)])  # the digit steers from the start
    elif codes:
        drawn = CodeShares(codes, name="code_shares")(latent)  # codes in their fitted shares
        code = CategoricalCode(codes, name="code")(drawn)
        x = layers.Concatenate()([drawn, layers.Embedding(codes, 16)(code)])
    x = layers.Dense(7 * 7 * 2 * filters, use_bias=False)(x)
    x = layers.LeakyReLU(0.2)(layers.BatchNormalization(synchronized=True)(x))
    x = layers.Reshape((7, 7, 2 * filters))(x)
    for width in (filters, filters // 2):
        x = layers.Conv2DTranspose(width, 4, strides=2, padding="same", use_bias=False)(x)
        x = layers.LeakyReLU(0.2)(layers.BatchNormalization(synchronized=True)(x))
    x = layers.Conv2D(1, 5, padding="same", activation="tanh", dtype="float32")(x)
    # float32 to the end: under mixed precision the scores and the uint8 images need full precision
    outputs = layers.Reshape((28, 28), dtype="float32")(x)
    return keras.Model(inputs if conditional else latent, outputs, name="generator")


def build_discriminator(
    filters: int, dropout: float, conditional: bool, codes: int = 0, stddev_group: int = 0
) -> keras.Model:
    """Images in [-1, 1] (and digits) in, one logit out: real or generated; with `codes`, also the logits
    of the generator's categorical code (InfoGAN's Q head, on the same features)."""
    image = keras.Input((28, 28), name="image")
    inputs = [image]
    x = layers.Reshape((28, 28, 1))(image)
    if conditional:
        label = keras.Input((), dtype="int32", name="label")
        inputs.append(label)
        x = layers.Concatenate()([x, label_plane(label, 28)])
    for width in (filters, 2 * filters):
        x = layers.Conv2D(width, 4, strides=2, padding="same")(x)
        x = layers.Dropout(dropout)(layers.LeakyReLU(0.2)(x))
    if stddev_group:
        x = MinibatchStddev(stddev_group, name="minibatch_stddev")(x)
    # a hidden dense layer: a linear read of the 7x7 maps could not judge a digit's shape as a whole
    x = layers.LeakyReLU(0.2)(layers.Dense(4 * filters)(layers.Flatten()(x)))
    logit = layers.Dense(1, dtype="float32")(layers.Dropout(dropout)(x))
    outputs = [logit, layers.Dense(codes, dtype="float32", name="code_logits")(x)] if codes else logit
    return keras.Model(inputs if conditional else image, outputs, name="discriminator")


def label_plane(label, size: int):
    """A learned size x size plane per digit, concatenated as one more channel (the usual cGAN input)."""
    plane = layers.Dense(size * size)(layers.Embedding(10, 50)(label))
    return layers.Reshape((size, size, 1))(plane)
