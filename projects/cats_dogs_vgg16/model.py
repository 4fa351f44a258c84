"""VGG16 transfer learning in two phases within one `fit`: feature extraction, then fine-tuning.

The network is one flat functional graph: uint8 images -> augmentation (training only) -> VGG16's own
`preprocess_input` -> VGG16's convolutional layers (so `block5_conv3` is reachable for Grad-CAM) -> a
small head. `TransferClassifier` wraps it and adds `PhaseSwitch` to every `fit` (train and tune alike):
- phase 1, the first `feature_epochs` epochs: the whole base frozen, the head learns at
  `head_learning_rate`;
- phase 2, the rest: the last `fine_tune_blocks` convolutional blocks unfrozen, everything trainable
  learns at `fine_tune_learning_rate` (10-100x lower, so the pretrained features are adjusted, not wiped).
The switch follows Keras's documented way to change `trainable` during `fit` (`make_train_function(
force=True)`). The optimizer is built for the head and the blocks to unfreeze from the start, inside the
strategy's scope, so a checkpoint or backup holds the same variables whichever phase wrote it, and a run
killed in either phase resumes in that phase (the phase follows from the epoch).
"""

from __future__ import annotations

import keras
import keras_tuner as kt
import tensorflow as tf
from keras import layers

from projects.cats_dogs_vgg16 import weights
from shared.config import UserError
from shared.project import Splits

LAST_CONV = "block5_conv3"  # VGG16's last convolution: Grad-CAM's layer
HEAD_OUTPUT = "dog_probability"  # the head's last layer: Dense(1, sigmoid)


@keras.saving.register_keras_serializable(package="cats_dogs_vgg16")
class VGGPreprocess(layers.Layer):
    """`keras.applications.vgg16.preprocess_input` as a layer: RGB 0-255 -> BGR minus ImageNet's means."""

    def call(self, images):
        return keras.applications.vgg16.preprocess_input(images)


def build_network(size: int, weights_path: str | None, units: int, dropout: float) -> keras.Model:
    try:
        base = keras.applications.VGG16(include_top=False, weights=weights_path, input_shape=(size, size, 3))
    except (OSError, ValueError) as e:
        raise UserError(
            f"{weights_path} does not load as VGG16's convolutional weights ({str(e)[:200]}); "
            f"--weights takes Keras's {weights.FILENAME}"
        ) from e
    images = keras.Input((size, size, 3), dtype="uint8", name="image")
    x = layers.Rescaling(1.0, name="to_float")(images)  # uint8 -> float32, still 0-255
    x = layers.RandomFlip("horizontal", name="flip")(x)  # augmentation: active in training only
    x = layers.RandomRotation(0.1, fill_mode="reflect", name="rotate")(x)
    x = layers.RandomZoom(0.2, fill_mode="reflect", name="zoom")(x)
    x = VGGPreprocess(name="vgg16_preprocess")(x)
    for layer in base.layers[1:]:  # VGG16 is a chain: the same layers (names, weights) in this one graph
        copy = layer.__class__.from_config(layer.get_config())
        x = copy(x)
        copy.set_weights(layer.get_weights())
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="head_dropout_1")(x)
    x = layers.Dense(units, activation="relu", name="head_dense")(x)
    x = layers.Dropout(dropout, name="head_dropout_2")(x)
    probability = layers.Dense(1, activation="sigmoid", dtype="float32", name="dog_probability")(x)
    return keras.Model(images, probability, name="vgg16_cats_dogs")


def grad_cam_probe(network: keras.Model) -> keras.Model:
    """The network's own layers (same weights), from the image input to [LAST_CONV's feature maps, the
    head's last input, p(dog)]: what `grad_cam` needs from one forward pass."""
    head = network.get_layer(HEAD_OUTPUT)
    return keras.Model(
        network.inputs,
        [network.get_layer(LAST_CONV).output, head.input, network.output],
        name="grad_cam_probe",
    )


def grad_cam(probe: keras.Model, images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Grad-CAM (Selvaraju et al. 2017) of the predicted class (dog if p >= 0.5, else cat) on LAST_CONV, in
    inference mode (no augmentation): the feature maps weighted by the mean gradient of that class's score,
    ReLU'd, divided by their max (all zeros when the max is 0). Returns ([N, h, w] in [0, 1], p(dog) [N]).

    The score is the class's logit (z for a dog, -z for a cat), as in the paper, not its probability: the
    two gradients differ by the factor p(1 - p) > 0 per image, which the max cancels, but p(dog) rounds to
    1.0 in float32 past z ~ 17, where the probability's gradient (and so the map) would be all zeros."""
    head = probe.get_layer(HEAD_OUTPUT)
    with tf.GradientTape() as tape:
        features, last_hidden, probability = probe(images, training=False)
        logit = (tf.matmul(tf.cast(last_hidden, head.kernel.dtype), head.kernel) + head.bias)[:, 0]
        probability = tf.cast(probability[:, 0], tf.float32)
        score = tf.where(probability >= 0.5, logit, -logit)
    # each image's score depends on its own feature maps only: the summed target's gradient is per image
    gradients = tf.cast(tape.gradient(score, features), tf.float32)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    maps = tf.nn.relu(tf.reduce_sum(tf.cast(features, tf.float32) * weights, axis=-1))
    return tf.math.divide_no_nan(maps, tf.reduce_max(maps, axis=(1, 2), keepdims=True)), probability


def block_names(network: keras.Model, blocks: range) -> tuple[str, ...]:
    return tuple(
        layer.name for layer in network.layers if any(layer.name.startswith(f"block{b}_") for b in blocks)
    )


class PhaseSwitch(keras.callbacks.Callback):
    """Sets the phase at the start of each epoch; logs `phase` and `learning_rate` into the history."""

    def on_epoch_begin(self, epoch, logs=None):
        self.model.set_phase(epoch)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["phase"] = self.model.phase
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


@keras.saving.register_keras_serializable(package="cats_dogs_vgg16")
class TransferClassifier(keras.Model):
    def __init__(
        self,
        network: keras.Model,
        feature_epochs: int = 5,
        fine_tune_blocks: int = 1,
        head_learning_rate: float = 1e-3,
        fine_tune_learning_rate: float = 1e-5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.network = network
        self.feature_epochs, self.fine_tune_blocks = feature_epochs, fine_tune_blocks
        self.head_learning_rate, self.fine_tune_learning_rate = head_learning_rate, fine_tune_learning_rate
        # names, not layers: a list of layers would be tracked (and saved) a second time
        self.base_names = block_names(network, range(1, 6))
        self.fine_tune_names = block_names(network, range(6 - fine_tune_blocks, 6))
        self.phase = 1
        for name in self.base_names:
            network.get_layer(name).trainable = False
        self.built = True  # the network is a built functional model

    def get_config(self):
        return {
            **super().get_config(),
            "network": keras.saving.serialize_keras_object(self.network),
            "feature_epochs": self.feature_epochs,
            "fine_tune_blocks": self.fine_tune_blocks,
            "head_learning_rate": self.head_learning_rate,
            "fine_tune_learning_rate": self.fine_tune_learning_rate,
        }

    @classmethod
    def from_config(cls, config):
        config = {**config, "network": keras.saving.deserialize_keras_object(config["network"])}
        return cls(**config)

    def compile_from_config(self, config):
        """On reload: compile, then build the optimizer as `build_model` does, for its saved state."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        self.build_optimizer()

    def call(self, images, training=False):
        return self.network(images, training=training)

    def set_phase(self, epoch: int) -> None:
        """Phase 2 from epoch `feature_epochs` on (when there are blocks to unfreeze), phase 1 before."""
        phase = 2 if epoch >= self.feature_epochs and self.fine_tune_blocks else 1
        if phase == 2 and epoch == self.feature_epochs:
            self.reset_optimizer()  # phase 2 starts as if compiled afresh (not when resumed past its start)
        # every epoch: the rate a resumed run's backup restored is overwritten with the phase's own
        self.optimizer.learning_rate = self.head_learning_rate if phase == 1 else self.fine_tune_learning_rate
        if phase != self.phase:
            for name in self.fine_tune_names:
                self.network.get_layer(name).trainable = phase == 2
            self.phase = phase
            self.make_train_function(force=True)  # the next step traces with the new trainable set

    def reset_optimizer(self) -> None:
        """Zeroes Adam's step count and moments, as the documented recipe's new optimizer would have
        them. Kept, the step count would make Adam's bias correction scale the unfrozen block's early
        updates past the fine-tuning rate (up to 3.5x after 315 phase-1 steps, 6.5x after thousands)."""
        optimizer = getattr(self.optimizer, "inner_optimizer", self.optimizer)  # a loss-scale wrapper's own
        for variable in optimizer.variables:  # state (its scale) is left alone
            variable.assign(keras.ops.zeros_like(variable))

    def fit(self, *args, callbacks=None, **kwargs):
        callbacks = list(callbacks or [])
        if self.fine_tune_blocks:
            epochs = kwargs.get("epochs", 1)
            if epochs <= self.feature_epochs:
                print(f"note: {epochs} epoch(s), feature_epochs {self.feature_epochs}: no fine-tuning")
            for callback in callbacks:  # never stop before fine-tuning has had its chance
                if isinstance(callback, keras.callbacks.EarlyStopping):
                    callback.start_from_epoch = max(callback.start_from_epoch, self.feature_epochs)
        return super().fit(*args, callbacks=[PhaseSwitch(), *callbacks], **kwargs)

    def build_optimizer(self) -> None:
        """Builds the optimizer for the head and the blocks phase 2 unfreezes (inside the scope), so its
        state is the same whichever phase saved it."""
        base = {id(v) for name in self.base_names for v in self.network.get_layer(name).weights}
        head = [v for v in self.network.trainable_variables if id(v) not in base]
        tuned = [v for name in self.fine_tune_names for v in self.network.get_layer(name).weights]
        self.optimizer.build(head + tuned)


def build_model(hp: kt.HyperParameters, splits: Splits) -> TransferClassifier:
    units = hp.Int("head_units", 64, 512, step=64, default=256)
    dropout = hp.Float("dropout", 0.0, 0.6, step=0.1, default=0.5)
    head_rate = hp.Float("head_learning_rate", 1e-4, 3e-3, sampling="log", default=1e-3)
    # phase 2's rate as a fraction of the head's: the 10-100x lower rate fine-tuning needs
    factor = hp.Float("fine_tune_factor", 0.01, 0.1, sampling="log", default=0.01)
    blocks = hp.Int("fine_tune_blocks", 0, 5, default=1)
    feature_epochs = hp.Int("feature_epochs", 1, 10, default=5)
    hp.Int("batch_size", 16, 64, step=16, default=32)  # per replica: read by the data pipeline

    weights_path = weights.resolve(splits.info["weights"])
    network = build_network(splits.state.image_size, weights_path, units, dropout)
    model = TransferClassifier(network, feature_epochs, blocks, head_rate, head_rate * factor)
    model.compile(
        optimizer=keras.optimizers.Adam(head_rate),
        loss="binary_crossentropy",
        metrics=["accuracy", keras.metrics.AUC(name="auc")],
    )
    model.build_optimizer()
    return model
