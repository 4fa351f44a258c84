"""DCGAN to generate face images (keras-io, fchollet), on mnist_gan's digits: training examples per second.

Kept from the source: its `train_step` (a discriminator step on generated and real images, labelled 1 and
0 plus 0.05 * uniform noise, then a generator step against all-0 "misleading" labels), Adam at 1e-4 for
each network, BinaryCrossentropy on sigmoid outputs, a 128-d latent space, pixels divided by 255, and
`compile`'s defaults (jit_compile="auto": XLA on a GPU, none on a CPU-only machine).
Changed, because the source makes 64x64x3 faces and these are 28x28x1 digits:
- the discriminator takes (28, 28, 1): its stride-2 convolutions give 14, 7 and 4 pixels, not 32, 16, 8.
- the generator starts from 7x7x128, not 8x8x128, and upsamples twice (Conv2DTranspose 128, 256) to 28x28:
  the source's third Conv2DTranspose(512), to 64x64, is dropped. Its last layer makes one channel, not 3.
- the batch is `batch_size` (the source's is 32), one real batch held in memory and repeated: only the
  steps are timed, not the source's JPEG decoding.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers, ops

from benchmarks.references import Budget, Measured, steps_per_second
from shared.project import Splits

TITLE = "DCGAN to generate face images"
SOURCE = "https://keras.io/examples/generative/dcgan_overriding_train_step/"
KIND = "step_time"

INPUT_SHAPE = (28, 28, 1)
LATENT_DIM = 128


class GAN(keras.Model):
    def __init__(self, discriminator, generator, latent_dim):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.seed_generator = keras.random.SeedGenerator(1337)

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn
        self.d_loss_metric = keras.metrics.Mean(name="d_loss")
        self.g_loss_metric = keras.metrics.Mean(name="g_loss")

    @property
    def metrics(self):
        return [self.d_loss_metric, self.g_loss_metric]

    def train_step(self, real_images):
        batch_size = ops.shape(real_images)[0]
        random_latent_vectors = keras.random.normal(
            shape=(batch_size, self.latent_dim), seed=self.seed_generator
        )
        generated_images = self.generator(random_latent_vectors)
        combined_images = ops.concatenate([generated_images, real_images], axis=0)
        # 1 for generated images, 0 for real ones, plus a little noise (the source's "important trick")
        labels = ops.concatenate([ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0)
        labels += 0.05 * tf.random.uniform(tf.shape(labels))

        with tf.GradientTape() as tape:
            predictions = self.discriminator(combined_images)
            d_loss = self.loss_fn(labels, predictions)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights, strict=True))

        random_latent_vectors = keras.random.normal(
            shape=(batch_size, self.latent_dim), seed=self.seed_generator
        )
        misleading_labels = ops.zeros((batch_size, 1))  # "all real images"
        # only the generator's weights are updated here, never the discriminator's
        with tf.GradientTape() as tape:
            predictions = self.discriminator(self.generator(random_latent_vectors))
            g_loss = self.loss_fn(misleading_labels, predictions)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights, strict=True))

        self.d_loss_metric.update_state(d_loss)
        self.g_loss_metric.update_state(g_loss)
        return {"d_loss": self.d_loss_metric.result(), "g_loss": self.g_loss_metric.result()}


def run(splits: Splits, budget: Budget, seed: int, target: float | None, batch_size: int) -> Measured:
    keras.utils.set_random_seed(seed)
    discriminator = keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            layers.Conv2D(64, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(128, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(128, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Flatten(),
            layers.Dropout(0.2),
            layers.Dense(1, activation="sigmoid"),
        ],
        name="discriminator",
    )
    generator = keras.Sequential(
        [
            keras.Input(shape=(LATENT_DIM,)),
            layers.Dense(7 * 7 * 128),
            layers.Reshape((7, 7, 128)),
            layers.Conv2DTranspose(128, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2DTranspose(256, kernel_size=4, strides=2, padding="same"),
            layers.LeakyReLU(negative_slope=0.2),
            layers.Conv2D(1, kernel_size=5, padding="same", activation="sigmoid"),
        ],
        name="generator",
    )
    gan = GAN(discriminator=discriminator, generator=generator, latent_dim=LATENT_DIM)
    gan.compile(
        d_optimizer=keras.optimizers.Adam(learning_rate=0.0001),
        g_optimizer=keras.optimizers.Adam(learning_rate=0.0001),
        loss_fn=keras.losses.BinaryCrossentropy(),
    )

    # the training split holds (uint8 28x28 image, int label); the source's dataset yields images only,
    # rescaled to [0, 1]. repeat() first, so a batch larger than the split is still full
    images, _ = splits.train.repeat().batch(batch_size).take(1).get_single_element()
    batch = tf.cast(images[..., tf.newaxis], "float32") / 255.0
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    per_second = steps_per_second(gan, dataset, budget) * batch_size
    params = discriminator.count_params() + generator.count_params()
    details = {"batch_size": batch_size, "input_shape": list(INPUT_SHAPE), "params": params}
    return Measured("training examples per second", per_second, details=details)
