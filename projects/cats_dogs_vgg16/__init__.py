"""cats_dogs_vgg16: cats vs dogs by VGG16 transfer learning, feature extraction then fine-tuning."""

import argparse

from projects.cats_dogs_vgg16 import data, evaluate, export, model, predict
from shared.project import Command, Project


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset",
        choices=("filtered", "full"),
        default="filtered",
        help="filtered: the 3,000-image cats_and_dogs_filtered subset; full: Kaggle's PetImages (25,000)",
    )
    parser.add_argument(
        "--weights",
        help="imagenet (Keras's cache, downloaded when online), a path to Keras's "
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5, or none (default: imagenet; none with --smoke)",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        help="side of the square input images, 32-512 (default: 224; 64 with --smoke)",
    )


PROJECT = Project(
    name="cats_dogs_vgg16",
    load_data=data.load,
    build_model=model.build_model,
    evaluate=evaluate.evaluate,
    serving_endpoint=export.serving_endpoint,
    extra_endpoints=export.extra_endpoints,  # gradcam: the answer and its heat map, for the page
    page_info=export.page_info,
    objective="val_accuracy",
    # the learning rate is set per phase by the model (head, then fine-tuning)
    defaults={"epochs": 15, "batch_size": 32, "lr_schedule": "constant"},
    add_options=add_options,
    commands={"predict": Command("cat or dog for each image file", predict.add_arguments, predict.run)},
)
