"""churn_ann: customer churn from raw CSV rows with a small network, measured against its baselines."""

from projects.churn_ann import data, evaluate, export, model, predict, seeds
from shared.project import Command, Project

PROJECT = Project(
    name="churn_ann",
    load_data=data.load,
    build_model=model.build_model,
    evaluate=evaluate.evaluate,
    serving_endpoint=export.serving_endpoint,
    after_fit=evaluate.choose_network_threshold,
    page_info=export.page_info,
    state_type=data.ChurnState,
    examples=export.examples,
    options=data.Options,
    objective="val_auc",
    defaults={"epochs": 40, "batch_size": 64},
    commands={
        "predict": Command("score a customers CSV with a trained run", predict.add_arguments, predict.run),
        "seeds": seeds.COMMAND,
    },
)
