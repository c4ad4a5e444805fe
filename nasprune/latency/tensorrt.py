"""``tensorrt``: an engine NVIDIA TensorRT builds from the exported ONNX model, on a GPU.

A plain module becomes an fp16 engine; an :class:`~nasprune.quantization.Int8Model` an int8
one, from its QDQ model with signed, symmetric activations (TensorRT's explicit quantization
reads zero points of 0 only; the ONNX Runtime backend's QDQ model has unsigned activations).
Runs are timed with CUDA events like every backend on a GPU, and the engine's outputs are
checked against torch before it is timed (fp16: within 2% of the largest output; int8: the
int8 model's own tolerance). Without a GPU, or without the ``tensorrt`` package, the backend
is refused with one line when a config names it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nasprune.config import LatencyConfig
from nasprune.errors import ConfigError, SearchError
from nasprune.latency.base import LatencyBackend, Runner
from nasprune.latency.registry import register_backend
from nasprune.onnx_export import onnx_bytes
from nasprune.quantization import Int8Model
from plumbing import require


@register_backend
class TensorRTBackend(LatencyBackend):
    """TensorRT engines (fp16, or int8 for int8 models) on the CUDA device torch sees."""

    name = "tensorrt"
    tolerance = 2e-2  # fp16 arithmetic
    runs_int8 = True  # an Int8Model runs as an int8 engine of its symmetric QDQ model
    gpu_only = True

    def __init__(self, settings: LatencyConfig) -> None:
        if settings.device != "cuda":
            raise ConfigError("latency.backend tensorrt runs on a GPU: set latency.device: cuda")
        super().__init__(settings)  # refuses when torch sees no CUDA device
        needs = "latency.backend tensorrt needs NVIDIA TensorRT"
        self.trt: Any = require("tensorrt", needs, "tensorrt", ConfigError)
        self.logger = self.trt.Logger(self.trt.Logger.ERROR)

    def fingerprint(self) -> str:
        return (
            f"tensorrt:fp16+int8-symmetric:{torch.cuda.get_device_name()}"
            f":trt-{self.trt.__version__}:cuda-{torch.version.cuda}"
        )

    def prepare(self, module: nn.Module, example: torch.Tensor) -> Runner:
        if isinstance(module, Int8Model):
            model, int8 = module.qdq(symmetric=True), True
        else:
            model, int8 = onnx_bytes(module, example), False
        engine = self._engine(model, int8, tuple(example.shape))
        context = engine.create_execution_context()
        context.set_input_shape("input", tuple(example.shape))
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        output = next(n for n in names if engine.get_tensor_mode(n) == self.trt.TensorIOMode.OUTPUT)
        placed = example.to(self.device, torch.float32).contiguous()
        out = torch.empty(tuple(context.get_tensor_shape(output)), device=self.device)
        context.set_tensor_address("input", placed.data_ptr())
        context.set_tensor_address(output, out.data_ptr())
        stream = torch.cuda.current_stream(self.device).cuda_stream

        def run(x: torch.Tensor) -> torch.Tensor:
            if x is not example:
                placed.copy_(x)
            if not context.execute_async_v3(stream):
                raise SearchError("latency backend tensorrt: the engine failed to run")
            return out

        return run

    def _engine(self, model: bytes, int8: bool, shape: tuple[int, ...]) -> Any:
        trt = self.trt
        builder = trt.Builder(self.logger)
        major = int(str(trt.__version__).split(".")[0])
        explicit = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        network = builder.create_network(explicit)
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(model):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise SearchError(f"TensorRT could not parse the model: {(errors or ['?'])[0]}")
        config = builder.create_builder_config()
        config.set_flag(trt.BuilderFlag.FP16)
        if int8:
            config.set_flag(trt.BuilderFlag.INT8)
        profile = builder.create_optimization_profile()  # the batch axis is dynamic in the export
        profile.set_shape("input", shape, shape, shape)
        config.add_optimization_profile(profile)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise SearchError("TensorRT could not build an engine for the model")
        return trt.Runtime(self.logger).deserialize_cuda_engine(serialized)
