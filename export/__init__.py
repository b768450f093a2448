"""ONNX export of stylekit's networks, verification against PyTorch, onnxruntime runners and benchmarks.

Run as ``python -m export ...``.
"""
