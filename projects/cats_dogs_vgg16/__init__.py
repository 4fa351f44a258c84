"""cats_dogs_vgg16: cats vs dogs by VGG16 transfer learning, feature extraction then fine-tuning."""

from projects.cats_dogs_vgg16 import data, evaluate, export, model, predict
from shared.project import Command, Project

PROJECT = Project(
    name="cats_dogs_vgg16",
    load_data=data.load,
    build_model=model.build_model,
    evaluate=evaluate.evaluate,
    serving_endpoint=export.serving_endpoint,
    extra_endpoints=export.extra_endpoints,  # gradcam: the answer and its heat map, for the page
    page_info=export.page_info,
    state_type=data.PetsState,
    examples=export.example_files,  # a few encoded test images, to check each export with
    options=data.Options,
    objective="val_accuracy",
    defaults={"epochs": 15, "batch_size": 32},
    # the learning rate is set per phase by the model (head, then fine-tuning): a schedule would overwrite it
    owns_learning_rate=True,
    commands={"predict": Command("cat or dog for each image file", predict.add_arguments, predict.run)},
)
