"""stock_lstm: next-day log-return forecasts with an LSTM, evaluated walk-forward against baselines."""

from projects.stock_lstm import data, evaluate, export, model, predict
from shared.project import Command, Project

PROJECT = Project(
    name="stock_lstm",
    load_data=data.load,
    build_model=model.build_model,
    evaluate=evaluate.evaluate,
    serving_endpoint=export.serving_endpoint,
    examples=export.examples,
    page_info=export.page_info,
    state_type=data.StockState,
    options=data.Options,
    objective="val_loss",
    objective_direction="min",
    defaults={"epochs": 50, "batch_size": 64, "early_stopping_patience": 8},
    for_hparams=data.for_hparams,
    commands={
        "predict": Command(
            "the next trading day's forecast from a trained run", predict.add_arguments, predict.run
        )
    },
)
