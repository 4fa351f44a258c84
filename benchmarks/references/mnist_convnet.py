"""Simple MNIST convnet (keras-io, fchollet) on mnist_cnn's splits: training time to a test accuracy.

Kept from the source: the model (two 3x3 convolutions with 2x2 max pooling, dropout 0.5, a softmax layer),
Adam at its defaults, batch size 128, 15 epochs, pixels divided by 255, `fit` on in-memory arrays (which
shuffles every epoch). Changed:
- sparse_categorical_crossentropy on the integer labels instead of categorical_crossentropy on one-hot
  ones: the same loss and the same gradients, without the one-hot copy.
- validation_data is the project's own validation split (the last 5,000 training digits) instead of
  validation_split=0.1: mnist_cnn already holds those digits out, so both train on the same 55,000.
- the test accuracy is computed after every epoch (TimeToTarget), not once at the end, and training stops
  when it reaches the target, after budget.max_epochs epochs or once budget.max_seconds have passed.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from benchmarks.references import Budget, Measured, TimeToTarget, spread
from shared.project import Splits

TITLE = "Simple MNIST convnet"
SOURCE = "https://keras.io/examples/vision/mnist_convnet/"
KIND = "time_to_target"

NUM_CLASSES = 10
INPUT_SHAPE = (28, 28, 1)
EPOCHS = 15  # the source's; the budget may stop it sooner
BATCH_SIZE = 128


def arrays(dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """A split of (uint8 28x28 image, int label) examples as the source's arrays: float32 [N, 28, 28, 1] in
    [0, 1], and the labels."""
    images, labels = dataset.batch(len(dataset)).get_single_element()
    images = images.numpy().astype("float32") / 255
    return np.expand_dims(images, -1), labels.numpy()


def run(splits: Splits, budget: Budget, seed: int, target: float | None, batch_size: int) -> Measured:
    keras.utils.set_random_seed(seed)
    x_train, y_train = arrays(splits.train)
    x_val, y_val = arrays(splits.validation)
    x_test, y_test = arrays(spread(splits.test, budget))  # --quick scores on fewer test digits

    model = keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ]
    )
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

    def test_accuracy() -> float:
        # the fraction of test digits whose most probable class is the label, what evaluate's "accuracy"
        # reports; predict leaves fit's metric state alone
        probabilities = model.predict(x_test, batch_size=1024, verbose=0)
        return float(np.mean(np.argmax(probabilities, axis=-1) == y_test))

    # no target: run the whole (budgeted) recipe and report the last epoch's accuracy
    goal = target if target is not None else float("inf")
    timer = TimeToTarget(test_accuracy, goal, budget, higher_is_better=True)
    model.fit(
        x_train,
        y_train,
        batch_size=BATCH_SIZE,  # the source's, whatever ours uses
        # --quick scores every `round_steps` steps instead of every epoch
        epochs=budget.max_epochs if budget.round_steps else min(EPOCHS, budget.max_epochs),
        steps_per_epoch=budget.round_steps,
        validation_data=(x_val, y_val),
        callbacks=[timer],
        verbose=0,
    )
    result = timer.measured("test accuracy")
    result.details = {"batch_size": BATCH_SIZE, "params": model.count_params()}
    return result
