"""Devices and `tf.distribute`: which strategy, how many replicas, what precision.

`auto` picks MultiWorkerMirroredStrategy when `TF_CONFIG` is set, MirroredStrategy over all GPUs when there
are two or more, and the default (one-device) strategy otherwise. Tests split the CPU into logical devices
(`--cpu-replicas 2`) to run MirroredStrategy without GPUs.
"""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from shared.config import STRATEGIES, UserError


def split_cpu(replicas: int) -> None:
    """Splits the physical CPU into `replicas` logical devices. Must run before TensorFlow uses a device."""
    if replicas <= 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    except RuntimeError as e:  # TensorFlow already initialised its devices
        existing = len(tf.config.list_logical_devices("CPU"))
        if existing != replicas:
            raise UserError(
                f"cannot split the CPU into {replicas} devices after TensorFlow started: {e}"
            ) from e


def is_multi_worker(name: str) -> bool:
    """Whether `--strategy NAME` means MultiWorkerMirroredStrategy here (auto does when TF_CONFIG is set)."""
    return name == "multi_worker" or (name == "auto" and bool(os.environ.get("TF_CONFIG")))


def make_strategy(name: str = "auto", cpu_replicas: int = 0) -> tf.distribute.Strategy:
    """The strategy for `--strategy NAME` (a bad name is a clear error)."""
    if name not in STRATEGIES:
        raise UserError(f"--strategy must be one of {', '.join(STRATEGIES)}; got {name!r}")
    # Physical devices only until the strategy exists: listing logical devices starts TensorFlow's
    # runtime, after which neither the CPU split nor multi-worker collectives can be configured.
    gpus = tf.config.list_physical_devices("GPU")
    if is_multi_worker(name):
        if not os.environ.get("TF_CONFIG"):
            raise UserError("--strategy multi_worker needs TF_CONFIG describing the cluster and this worker")
        patch_keras_for_multi_worker()
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "auto":
        name = "mirrored" if len(gpus) >= 2 or cpu_replicas > 1 else "one"
    split_cpu(cpu_replicas)
    if name == "one":
        return tf.distribute.get_strategy()  # the default strategy: no distribution overhead
    if gpus:
        return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("GPU")])
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    # NCCL (the default all-reduce) is GPU-only; on CPU devices reduce through one device.
    return tf.distribute.MirroredStrategy(cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())


def patch_keras_for_multi_worker() -> None:
    """Makes Keras 3.15's `fit` work under MultiWorkerMirroredStrategy (keras-team/keras#20585).

    Two places in keras/src/backend/tensorflow/trainer.py call `strategy.reduce` in ways the collective
    (multi-worker) reduce rejects: `_maybe_symbolic_build` reduces the whole nested per-replica batch only
    to learn its shapes, and `reduce_per_replica` reduces scalar logs along axis 0. The replacements take
    the first local replica's batch for the shapes, and reduce scalars with `axis=None`. Verified with two
    workers on 127.0.0.1: identical weights on both, equal to a one-process run within 2e-7.
    Only applied for multi-worker runs, and only on the Keras minor version it was checked against.
    """
    if not keras.__version__.startswith("3.15."):
        raise UserError(
            f"multi-worker training was checked with Keras 3.15 only (found {keras.__version__}); "
            "install keras>=3.15,<3.16 or re-check the patch in shared/strategy.py"
        )
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer, "_multi_worker_patched", False):
        return

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            for _, _, data in iterator:
                data_batch = tree.map_structure(_first_local_value(self.distribute_strategy), next(data))
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    original_reduce = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if trainer._collective_all_reduce_multi_worker(strategy) and reduction in ("auto", "mean"):
            return tree.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None if v.shape.rank == 0 else 0), values
            )
        return original_reduce(values, strategy, reduction)

    trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    trainer.reduce_per_replica = reduce_per_replica  # looked up when the train step is traced
    trainer._multi_worker_patched = True


def _first_local_value(strategy: tf.distribute.Strategy):
    def first(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    return first


def worker_index() -> tuple[int, bool]:
    """(this worker's index, whether it is the chief) from TF_CONFIG; (0, True) on a single machine."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    task_type, index = task.get("type", "worker"), int(task.get("index", 0))
    has_chief = "chief" in config.get("cluster", {})
    is_chief = task_type == "chief" or (task_type == "worker" and index == 0 and not has_chief)
    return index, is_chief


def global_batch_size(per_replica: int | None, replicas: int, global_batch: int | None = None) -> int:
    """Batch sizes on the command line are per replica; a global batch must divide by the replica count."""
    if global_batch is not None:
        if global_batch < replicas or global_batch % replicas:
            lower = max(replicas, global_batch // replicas * replicas)
            raise UserError(
                f"global batch {global_batch} does not divide across {replicas} replicas; "
                f"use --global-batch-size {lower} or {lower + replicas}, or --batch-size (per replica)"
            )
        return global_batch
    if per_replica is None or per_replica < 1:
        raise UserError(f"--batch-size must be a positive number per replica; got {per_replica}")
    return per_replica * replicas


def configure_precision(mode: str = "auto") -> str:
    """Sets the Keras dtype policy: mixed_float16 by default on GPUs only (several times slower on CPU)."""
    if mode not in ("auto", "on", "off"):
        raise UserError(f"--mixed-precision must be auto, on or off; got {mode!r}")
    use_mixed = mode == "on" or (mode == "auto" and bool(tf.config.list_physical_devices("GPU")))
    policy = "mixed_float16" if use_mixed else "float32"
    keras.mixed_precision.set_global_policy(policy)
    return policy
