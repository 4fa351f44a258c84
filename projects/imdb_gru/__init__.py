"""imdb_gru: review sentiment from raw text with a bidirectional GRU; the RNN / LSTM / GRU comparison."""

from projects.imdb_gru import baseline, compare, data, evaluate, export, model, predict
from shared.project import Command, Project

PROJECT = Project(
    name="imdb_gru",
    load_data=data.load,
    build_model=model.build_model,
    evaluate=evaluate.evaluate,
    serving_endpoint=export.serving_endpoint,
    examples=export.examples,  # no state_type: the adapted vectorizer (preprocessor.keras) is all it learns
    options=data.Options,
    objective="val_accuracy",
    defaults={"epochs": 4, "batch_size": 64},
    commands={
        "predict": Command("score reviews with a trained run", predict.add_arguments, predict.run),
        "compare": compare.COMMAND,
        "baseline": Command(
            "TF-IDF words and word pairs + logistic regression, same split",
            baseline.add_arguments,
            baseline.run,
        ),
    },
)
