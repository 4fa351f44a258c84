"""One model server for every project's SavedModel: TF Serving's REST API (v1) and the Open Inference
Protocol (KServe V2), optional server-side batching, Prometheus metrics, limits and input checks.

It serves SavedModels by path and never imports a project. `python -m shared.serving --help`.
"""
