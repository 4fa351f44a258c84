"""keras-io's end-to-end transfer-learning example (Xception, cats vs dogs): training examples per second.

Source: "Transfer learning & fine-tuning" (keras-io guide), its end-to-end cats vs dogs example, Keras 3
version. Kept: images resized to 150x150 by `keras.layers.Resizing` in the input pipeline, augmentation
(RandomFlip("horizontal"), RandomRotation(0.1)) in the input pipeline, the model (Rescaling to [-1, 1],
Xception without its top called with training=False, GlobalAveragePooling2D, Dropout(0.2), Dense(1)
logits), BinaryCrossentropy(from_logits=True) with BinaryAccuracy, Adam() with the base frozen, then
base.trainable = True and a recompile with Adam(1e-5) for fine-tuning.

Changed from the source, and why:
- weights=None: ImageNet weights cannot be downloaded here; step time does not depend on them;
- the images are cats_dogs_vgg16's (uint8, already decoded and resized to its --image-size, 224 by
  default, 64 in --smoke), resized again to 150x150; keras-io decodes the tfds JPEGs at their own sizes;
- one real batch of `batch_size` training images, repeated (keras-io batches 64; cats_dogs_vgg16 uses
  32): the figure is the training step rate, not the input pipeline's. The augmentation still runs on
  every step, on the whole batch (keras-io maps it per image before batching, then caches the augmented
  batches after the first epoch: there it costs the first epoch only; here it is at most a few ms a step);
- no training to accuracy: `value` is the frozen-base rate (keras-io's first phase),
  details["fine_tune_examples_per_second"] the rate with the whole base trainable (its second phase).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from benchmarks.references import Budget, Measured, steps_per_second
from shared.project import Splits

TITLE = "Transfer learning & fine-tuning"
SOURCE = "https://keras.io/guides/transfer_learning/"
KIND = "step_time"
SIZE = (150, 150)


def run(splits: Splits, budget: Budget, seed: int, target: float | None, batch_size: int) -> Measured:
    keras.utils.set_random_seed(seed)
    # made here, after the seed is set (their random generators are seeded when they are made)
    augmentation_layers = [layers.RandomFlip("horizontal"), layers.RandomRotation(0.1)]

    def data_augmentation(x):
        for layer in augmentation_layers:
            x = layer(x)
        return x

    images, labels = next(splits.train.batch(batch_size).take(1).as_numpy_iterator())
    if len(images) < batch_size:
        raise ValueError(f"the training split holds {len(images)} images, fewer than batch_size {batch_size}")
    resize_fn = keras.layers.Resizing(*SIZE)
    batch = (resize_fn(images), labels.astype(np.float32))  # float32 0-255, [batch, 150, 150, 3]
    ds = tf.data.Dataset.from_tensors(batch).repeat()
    ds = ds.map(lambda x, y: (data_augmentation(x), y)).prefetch(tf.data.AUTOTUNE)

    base_model = keras.applications.Xception(
        weights=None,  # keras-io: "imagenet"
        input_shape=(150, 150, 3),
        include_top=False,
    )
    base_model.trainable = False
    inputs = keras.Input(shape=(150, 150, 3))
    scale_layer = keras.layers.Rescaling(scale=1 / 127.5, offset=-1)
    x = scale_layer(inputs)
    x = base_model(x, training=False)  # batch norm stays in inference mode, even when fine-tuning
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(1)(x)
    model = keras.Model(inputs, outputs)

    model.compile(
        optimizer=keras.optimizers.Adam(),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy()],
    )
    frozen = steps_per_second(model, ds, budget) * batch_size

    base_model.trainable = True
    model.compile(
        optimizer=keras.optimizers.Adam(1e-5),  # low learning rate
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy()],
    )
    fine_tune = steps_per_second(model, ds, budget) * batch_size

    return Measured(
        "training examples per second",
        frozen,
        details={
            "batch_size": batch_size,
            "input_shape": [*SIZE, 3],
            "source_image_size": int(images.shape[1]),
            "params": model.count_params(),
            "trainable_params_fine_tune": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
            "fine_tune_examples_per_second": fine_tune,
        },
    )
