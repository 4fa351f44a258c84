"""autoencoder_anomaly: anomalies in a NAB time series from an autoencoder's reconstruction error."""

from projects.autoencoder_anomaly import category, data, evaluate, export, model, predict
from shared.project import Command, Project

PROJECT = Project(
    name="autoencoder_anomaly",
    load_data=data.load,
    build_model=model.build_model,
    evaluate=evaluate.evaluate,
    serving_endpoint=export.serving_endpoint,
    examples=export.examples,
    state_type=data.AnomalyState,
    options=data.Options,
    after_fit=evaluate.choose_threshold,
    objective="val_loss",
    objective_direction="min",
    defaults={"epochs": 50, "batch_size": 64, "early_stopping_patience": 8},
    for_hparams=data.for_hparams,
    page_info=export.page_info,
    commands={
        "predict": Command(
            "score a timestamp,value CSV with a trained run", predict.add_arguments, predict.run
        ),
        "category": category.COMMAND,
    },
)
