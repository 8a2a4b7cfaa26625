"""Export of a trained model to a standard format (ONNX) and its runtime.

Imports onnx, onnxruntime, skl2onnx and onnxmltools lazily (``pip install 'mlwright[onnx]'``).
"""
