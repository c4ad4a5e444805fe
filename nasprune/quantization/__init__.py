"""int8 layers: the QDQ model ONNX Runtime runs (:mod:`.qdq`) and its fake-quantized twin in
torch (:mod:`.fake`), which scores and trains like it within a gap the tests bound."""

from nasprune.quantization.fake import FakeInt8
from nasprune.quantization.model import Int8Model, int8_device
from nasprune.quantization.qdq import SETTINGS, OrtModule, quantize_qdq
from search_spaces.quantization import quantizable

__all__ = [
    "SETTINGS",
    "FakeInt8",
    "Int8Model",
    "OrtModule",
    "int8_device",
    "quantizable",
    "quantize_qdq",
]
