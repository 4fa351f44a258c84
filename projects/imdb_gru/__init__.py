"""imdb_gru: review sentiment from raw text with a bidirectional GRU; the RNN / LSTM / GRU comparison."""

from projects.imdb_gru import compare, data, evaluate, export, model, predict
from shared.project import Command, Project

PROJECT = Project(
    name="imdb_gru",
    load_data=data.load,
    build_model=model.build_model,
    evaluate=evaluate.evaluate,
    serving_endpoint=export.serving_endpoint,
    objective="val_accuracy",
    defaults={"epochs": 3, "batch_size": 64},
    commands={
        "predict": Command("score reviews with a trained run", predict.add_arguments, predict.run),
        "compare": Command(
            "SimpleRNN, LSTM, GRU, bidirectional GRU on one budget",
            compare.add_arguments,
            compare.run,
        ),
    },
)
