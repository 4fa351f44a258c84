"""A DCGAN as a `keras.Model` with its own `train_step`, so `fit` and every callback work as elsewhere.

Distribution: each replica's losses are summed over its examples and divided by the *global* batch
(`tf.nn.compute_average_loss`), and the optimizers sum the replicas' gradients, so one step on N replicas
is one step on the whole batch (keras-team/keras#20164). Batch normalisation is synchronised across
replicas for the same reason, and both optimizers are built in `compile`, inside the strategy's scope.

Validation scores the generator instead of a loss: each validation batch's labels get generated digits,
and `val_fid` (the Frechet distance of the scoring classifier's features to the real training digits')
and `val_inception_score` accumulate over the whole split. The checkpoint keeps the lowest `val_fid`.
Under N replicas the logged value is the mean of the replicas' scores (Keras averages step outputs); it
only chooses the checkpoint, and `evaluate` scores 10,000 digits on one device for the reported numbers.
"""

from __future__ import annotations

from typing import Any

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf

from projects.mnist_gan.networks import build_discriminator, build_generator
from projects.mnist_gan.scorer import FEATURES, FrechetDistance, InceptionScore
from shared.config import UserError
from shared.project import Splits


def shares_by_em(readings: np.ndarray, tolerance: float = 1e-7, limit: int = 1000) -> tuple[np.ndarray, int]:
    """(class shares, iterations) that best explain examples whose class probabilities [N, K] a classifier
    gave under even classes: EM over the shares, re-weighting each reading by them (Saerens et al. 2002)."""
    shares = np.full(readings.shape[1], 1.0 / readings.shape[1])
    for iteration in range(1, limit + 1):
        weighted = readings * shares
        updated = (weighted / weighted.sum(axis=1, keepdims=True)).mean(axis=0)
        if np.abs(updated - shares).max() < tolerance:
            return updated, iteration
        shares = updated
    return shares, limit


def to_pixels(images):
    """[-1, 1] floats -> the uint8 values a client gets (as float32): what is scored is what is served."""
    return tf.round(tf.clip_by_value((images + 1.0) * 127.5, 0.0, 255.0))


@keras.saving.register_keras_serializable(package="mnist_gan")
class GAN(keras.Model):
    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        scorer: keras.Model,
        conditional: bool = False,
        label_smoothing: float = 0.0,
        noise_seed: int = 0,
        ema_decay: float = 0.0,
        r1_gamma: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.generator, self.discriminator, self.scorer = generator, discriminator, scorer
        self.conditional, self.label_smoothing, self.noise_seed = conditional, label_smoothing, noise_seed
        self.ema_decay = ema_decay
        self.r1_gamma = r1_gamma  # Mescheder et al. 2018's R1 penalty on the discriminator's real slopes
        # the generator's exponential moving average (Yazici et al. 2019): the one that is scored and served
        self.average = None
        if ema_decay > 0:
            self.average = keras.models.clone_model(generator)
            self.average.set_weights(generator.get_weights())
        self.latent_dim = generator.inputs[0].shape[-1]
        # InfoGAN: how many categorical codes the generator reads off its latent vectors (0: none)
        self.codes = discriminator.outputs[1].shape[-1] if len(discriminator.outputs) > 1 else 0
        width = scorer.get_layer(FEATURES).units
        # the real training digits' feature statistics: set by build_model, saved with the weights
        self.real_mean = self.add_weight(
            (width,), "zeros", dtype="float64", trainable=False, name="real_mean"
        )
        self.real_root = self.add_weight(
            (width, width), "zeros", dtype="float64", trainable=False, name="real_cov_root"
        )
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.fid = FrechetDistance(self.real_mean, self.real_root)
        self.inception = InceptionScore()
        self.d_optimizer = self.g_optimizer = None
        self.built = True  # its parts are built functional models: nothing is left to build

    def compile(self, d_optimizer=None, g_optimizer=None, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer = d_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.g_optimizer = g_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5)
        if keras.mixed_precision.global_policy().name == "mixed_float16":
            # what compile does for `model.optimizer`, done for the two this model steps itself
            self.d_optimizer = keras.optimizers.LossScaleOptimizer(self.d_optimizer)
            self.g_optimizer = keras.optimizers.LossScaleOptimizer(self.g_optimizer)
        # built here, in the strategy's scope, rather than lazily inside a replica's first step
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    def get_compile_config(self):
        return None  # a reloaded model generates; training state lives in the run's backup, not here

    def get_config(self):
        return {
            **super().get_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "scorer": keras.saving.serialize_keras_object(self.scorer),
            "conditional": self.conditional,
            "label_smoothing": self.label_smoothing,
            "noise_seed": self.noise_seed,
            "ema_decay": self.ema_decay,
            "r1_gamma": self.r1_gamma,
        }

    @classmethod
    def from_config(cls, config):
        for name in ("generator", "discriminator", "scorer"):
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.fid, self.inception]

    @property
    def sampler(self) -> keras.Model:
        """The generator that draws the digits for validation, evaluation and serving."""
        return self.average if self.average is not None else self.generator

    def call(self, inputs, training=False):
        return self.sampler(inputs, training=training)

    def update_average(self) -> None:
        """average <- d * average + (1 - d) * generator after the generator's n-th update, d = min(decay,
        n / (9 + n)) as in TF's ExponentialMovingAverage, so that early averages forget the initial weights.
        Batch-norm statistics are copied: they already are averages. Done once, in cross-replica context."""
        updates = tf.cast(self.g_optimizer.iterations, tf.float32)
        decay = tf.minimum(self.ema_decay, updates / (9.0 + updates))

        def update(strategy):
            for average, weight in zip(self.average.weights, self.generator.weights, strict=True):
                keep = decay if weight.trainable else 0.0
                strategy.extended.update(
                    average.value, lambda a, w, k=keep: a.assign(k * a + (1.0 - k) * w), args=(weight.value,)
                )

        tf.distribute.get_replica_context().merge_call(update)

    def with_labels(self, x, labels):
        return [x, labels] if self.conditional else x

    def sample_latent(self, like, step, stream: int):
        """Normal noise, one vector per example of `like`, from a stateless RNG keyed by (seed, stream,
        step, replica): repeatable, and different on every replica (a seed generator's state is mirrored,
        so every replica would draw the same noise)."""
        count = tf.shape(like)[0]
        context = tf.distribute.get_replica_context()
        replica = context.replica_id_in_sync_group if context is not None else 0
        seed = tf.stack(
            [tf.cast(step, tf.int64) * 8 + stream, self.noise_seed * 1024 + tf.cast(replica, tf.int64)]
        )
        return tf.random.stateless_normal((count, self.latent_dim), seed)

    def judge(self, images, labels):
        """The discriminator's real-or-generated logits, and its code logits (None without codes)."""
        outputs = self.discriminator(self.with_labels(images, labels), training=True)
        return outputs if self.codes else (outputs, None)

    def judge_real(self, real, labels):
        """The discriminator's logits for real digits, and per example its R1 penalty: gamma / 2 times the
        squared norm of the logit's gradient with respect to the pixels (0 when gamma is 0). Penalising
        the slope on real data keeps the discriminator from sharpening without bound around them. With
        the minibatch standard deviation on, a digit's gradient also holds its group's share (as in
        StyleGAN2, which takes the gradient of the summed logits the same way)."""
        if not self.r1_gamma:
            return self.judge(real, labels)[0], 0.0
        with tf.GradientTape() as tape:
            tape.watch(real)
            logits, _ = self.judge(real, labels)
            total = tf.reduce_sum(logits)  # inside the tape, or the gradient is None
        slopes = tape.gradient(total, real)
        return logits, 0.5 * self.r1_gamma * tf.reduce_sum(tf.square(slopes), axis=[1, 2])

    def code_loss(self, latent, code_logits):
        """Per example: how badly the discriminator told the generator's code back (InfoGAN's mutual
        information bound, weight 1); 0 without codes."""
        if not self.codes:
            return 0.0
        code = self.generator.get_layer("code")(self.generator.get_layer("code_shares")(latent))
        return keras.losses.sparse_categorical_crossentropy(code, code_logits, from_logits=True)

    def fit_code_shares(self, real_digits: tf.data.Dataset) -> dict[str, Any]:
        """Draws each InfoGAN code as often as the real digits fall into it, not evenly; {} without codes.

        Even codes need not split the digits in their true shares: several codes may settle on one digit
        (on 1s, say), which then comes out too often. The discriminator's code head, trained to tell each
        code back from its digits, reads the real digits' codes; trained under even codes, its readings
        are re-weighted to the shares that best explain the real digits by the EM of Saerens et al. 2002
        ("Adjusting the outputs of a classifier to new a priori probabilities"). Unsupervised: it reads
        the images of (image, label) pairs only. Training is unchanged; this is done once, after it."""
        if not self.codes:
            return {}
        readings = []
        for images, _ in real_digits.batch(2000):
            _, logits = self.discriminator(tf.cast(images, tf.float32) / 127.5 - 1.0, training=False)
            readings.append(keras.ops.convert_to_numpy(keras.ops.softmax(logits)).astype(np.float64))
        shares, iterations = shares_by_em(np.concatenate(readings))
        for generator in {id(g): g for g in (self.generator, self.sampler)}.values():
            generator.get_layer("code_shares").shares.assign(shares.astype(np.float32))
        return {"code_shares": shares.round(5).tolist(), "code_share_iterations": iterations}

    def train_step(self, data):
        images, labels = data
        real = tf.cast(images, tf.float32) / 127.5 - 1.0
        step = self.d_optimizer.iterations
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        bce = keras.losses.binary_crossentropy

        with tf.GradientTape() as tape:
            latent = self.sample_latent(real, step, 0)
            fake = self.generator(self.with_labels(latent, labels), training=True)
            real_logits, penalty = self.judge_real(real, labels)
            fake_logits, code_logits = self.judge(fake, labels)
            real_target = tf.fill(tf.shape(real_logits), 1.0 - self.label_smoothing)  # one-sided smoothing
            per_example = bce(real_target, real_logits, from_logits=True) + bce(
                tf.zeros_like(fake_logits), fake_logits, from_logits=True
            )
            per_example += penalty + self.code_loss(latent, code_logits)
            d_loss = tf.nn.compute_average_loss(per_example)  # sum / global batch
        weights = self.discriminator.trainable_variables
        gradients = tape.gradient(self.d_optimizer.scale_loss(d_loss), weights)  # scaled: float16 only
        self.d_optimizer.apply_gradients(zip(gradients, weights, strict=True))

        with tf.GradientTape() as tape:
            latent = self.sample_latent(real, step, 1)
            fake = self.generator(self.with_labels(latent, labels), training=True)
            fake_logits, code_logits = self.judge(fake, labels)
            per_example = bce(tf.ones_like(fake_logits), fake_logits, from_logits=True)
            per_example += self.code_loss(latent, code_logits)
            g_loss = tf.nn.compute_average_loss(per_example)
        weights = self.generator.trainable_variables
        gradients = tape.gradient(self.g_optimizer.scale_loss(g_loss), weights)
        self.g_optimizer.apply_gradients(zip(gradients, weights, strict=True))
        if self.average is not None:
            self.update_average()

        # the replica's own mean loss; the trackers average them over the replicas
        self.d_loss_tracker.update_state(d_loss * tf.cast(replicas, tf.float32))
        self.g_loss_tracker.update_state(g_loss * tf.cast(replicas, tf.float32))
        return {"d_loss": self.d_loss_tracker.result(), "g_loss": self.g_loss_tracker.result()}

    def test_step(self, data):
        _, labels = data
        # the noise is a function of the batch's labels (a hash of them), so every epoch scores the same noise
        key = tf.strings.to_hash_bucket_fast(tf.strings.reduce_join(tf.strings.as_string(labels)), 2**40)
        fake = self.sampler(self.with_labels(self.sample_latent(labels, key, 2), labels))
        features, probabilities = self.scorer(to_pixels(fake))
        self.fid.update_state(features)
        self.inception.update_state(probabilities)
        return {"fid": self.fid.result(), "inception_score": self.inception.result()}

    def set_reference(self, mean: np.ndarray, covariance_root: np.ndarray) -> None:
        self.real_mean.assign(mean)
        self.real_root.assign(covariance_root)


def build_model(hp: kt.HyperParameters, splits: Splits) -> GAN:
    from projects.mnist_gan import data  # the scorer and the reference statistics the data step made

    latent_dim = hp.Int("latent_dim", 32, 128, step=32, default=64)
    filters = hp.Int("filters", 32, 128, step=16, default=64)
    dropout = hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.0)
    d_rate = hp.Float("d_learning_rate", 5e-5, 1e-3, sampling="log", default=2e-4)
    g_rate = hp.Float("g_learning_rate", 5e-5, 1e-3, sampling="log", default=2e-4)
    beta_1 = hp.Float("beta_1", 0.0, 0.9, step=0.1, default=0.5)
    smoothing = hp.Float("label_smoothing", 0.0, 0.3, step=0.1, default=0.1)
    ema_decay = hp.Choice("ema_decay", [0.0, 0.99, 0.999, 0.9999], default=0.0)  # 0: no average
    # InfoGAN's categorical code for an unconditional GAN (0: none); a conditional one has the digits
    codes = hp.Choice("latent_codes", [0, 10, 30], default=30)
    # ProGAN's minibatch standard deviation in the discriminator, over groups of this many (0: none)
    stddev_group = hp.Choice("stddev_group", [0, 2, 4, 8], default=0)
    r1_gamma = hp.Choice("r1_gamma", [0.0, 0.1, 1.0, 10.0], default=0.0)  # 0: no R1 penalty
    hp.Int("batch_size", 32, 256, step=32, default=128)  # per replica: read by the data pipeline

    if not 0.0 <= ema_decay < 1.0:
        raise UserError(f"ema_decay must be in [0, 1) (0: no moving average); got {ema_decay}")
    if codes < 0 or codes == 1:
        raise UserError(f"latent_codes must be 0 (none) or at least 2 categories; got {codes}")
    if stddev_group < 0:
        raise UserError(f"stddev_group must be 0 (none) or a group size of 1 or more; got {stddev_group}")
    if r1_gamma < 0:
        raise UserError(f"r1_gamma must be 0 (no penalty) or more; got {r1_gamma}")
    conditional = bool(splits.info["conditional"])
    codes = 0 if conditional else codes
    scorer, (mean, root) = data.scorer_and_reference(splits)
    gan = GAN(
        build_generator(latent_dim, filters, conditional, codes),
        build_discriminator(filters, dropout, conditional, codes, stddev_group),
        scorer,
        conditional=conditional,
        label_smoothing=smoothing,
        noise_seed=int(splits.info["seed"]),  # --seed
        ema_decay=ema_decay,
        r1_gamma=r1_gamma,
    )
    gan.set_reference(mean, root)
    gan.compile(
        d_optimizer=keras.optimizers.Adam(d_rate, beta_1=beta_1),
        g_optimizer=keras.optimizers.Adam(g_rate, beta_1=beta_1),
    )
    return gan
