"""mnist_cnn: handwritten digits with a small CNN, about 99.5% test accuracy in 5 minutes on a 2-core CPU."""

from projects.mnist_cnn import data, evaluate, export, model, predict
from shared.project import Command, Project

PROJECT = Project(
    name="mnist_cnn",
    load_data=data.load,
    build_model=model.build_model,
    evaluate=evaluate.evaluate,
    serving_endpoint=export.serving_endpoint,
    examples=export.examples,
    objective="val_accuracy",
    defaults={"epochs": 8, "batch_size": 128},
    commands={"predict": Command("print the digit in each image file", predict.add_arguments, predict.run)},
)
