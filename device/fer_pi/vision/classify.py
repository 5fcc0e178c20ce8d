"""One classifier: hides which TFLite runtime is installed and the int8 (de)quantization."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fer_pi.core.records import Prediction
from fer_pi.vision.modelfile import ModelError, ModelInfo, read_model_info

log = logging.getLogger(__name__)
INPUT_SHAPE = (1, 48, 48, 1)  # one 48x48 grayscale face: what every model here is made for


def load_interpreter_class(prefer: str | None = None):
    """ai-edge-litert, else tflite_runtime (Bookworm, numpy<2), else tensorflow.lite."""
    candidates = [
        ("ai_edge_litert", "ai_edge_litert.interpreter"),
        ("tflite_runtime", "tflite_runtime.interpreter"),
        ("tensorflow", "tensorflow.lite.python.interpreter"),
    ]
    if prefer:
        candidates = [c for c in candidates if c[0] == prefer]
    errors = []
    for name, module in candidates:
        try:
            mod = __import__(module, fromlist=["Interpreter"])
            return name, mod.Interpreter
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
    raise ModelError("no TFLite runtime: pip install ai-edge-litert (" + "; ".join(errors) + ")")


def sharpen(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature scaling of probabilities (Guo et al. 2017): softmax(logits / T), computed
    from the probabilities as p^(1/T) renormalized, since the int8 model outputs them. The
    ranking, and so the label, never changes; only how sure it claims to be."""
    if temperature == 1.0:
        return probs
    q = np.power(np.clip(probs, 0.0, None), 1.0 / temperature, dtype=np.float64)
    total = q.sum(axis=-1, keepdims=True)
    out = np.divide(q, total, out=np.full_like(q, 1.0 / q.shape[-1]), where=total > 0)
    return out.astype(np.float32)


class Classifier:
    """Classifies 48×48-style grayscale face crops with an int8 (or float) TFLite model.

    The interpreter is built once. ``classify`` runs a frame's faces (and their mirrors) in
    one call, its input resized to their number: on this project's x86 host a face costs
    7-17 % less CPU in a batch of 2-8 than alone, and a resize only when the number changes
    costs less than one face. ``probabilities`` runs one face alone.
    """

    def __init__(self, model: Path, threads: int = 2, runtime: str | None = None,
                 flip_tta: bool = False, temperature: float | None = None):
        self.info: ModelInfo = read_model_info(model)
        # the model's own calibration for this mode (metadata), unless the caller fits one
        # (temperature=1)
        own = self.info.temperature if flip_tta else self.info.temperature_single
        self.temperature = own if temperature is None else temperature
        self.runtime, interpreter_cls = load_interpreter_class(runtime)
        if model.stat().st_size == 0:
            raise ModelError(f"model file is empty: {model}")
        try:
            self.interpreter = interpreter_cls(model_path=str(model), num_threads=max(1, threads))
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"not a valid TFLite model: {model} ({first})") from None
        self.threads = threads
        self.flip_tta = flip_tta
        inp = self.interpreter.get_input_details()
        out = self.interpreter.get_output_details()
        if len(inp) != 1 or len(out) != 1:
            raise ModelError(f"model must have one input and one output: {model}")
        self._in, self._out = inp[0], out[0]
        shape = tuple(int(s) for s in self._in["shape"])
        if shape != INPUT_SHAPE:
            # a face is cut at 48x48, as FER2013's were: another size (a 96x96 repack, a
            # 64x64 float model) is not a model of this kind, however well it loads
            raise ModelError(f"model input must be one 48x48 grayscale image {INPUT_SHAPE}, "
                             f"got {shape}: {model}")
        self.input_size = (shape[2], shape[1])  # (w, h) for cv2.resize
        n_out = int(np.prod(self._out["shape"]))
        if n_out != len(self.info.labels):
            raise ModelError(f"model has {n_out} outputs but {len(self.info.labels)} labels: {model}")
        self._in_dtype = self._in["dtype"]
        self._in_scale, self._in_zp = self._in["quantization"]
        self._out_scale, self._out_zp = self._out["quantization"]
        self._batch = 1  # the input's first dimension now (classify resizes it)
        self._batchable = True  # False once a model refused a resize: one face a call
        log.info("model %s: %s, input %s %s, runtime %s, %d thread(s)", self.info.name, model,
                 shape, np.dtype(self._in_dtype).name, self.runtime, threads)

    def quantize(self, crop: np.ndarray) -> np.ndarray:
        """uint8 pixels → the model's input tensor values, from its own quantization."""
        x = crop.astype(np.float32) * self.info.norm_scale + self.info.norm_offset
        if np.issubdtype(self._in_dtype, np.integer) and self._in_scale:
            info = np.iinfo(self._in_dtype)
            x = np.clip(np.round(x / self._in_scale + self._in_zp), info.min, info.max)
        return x.astype(self._in_dtype)

    def probabilities(self, crop: np.ndarray) -> np.ndarray:
        """Class probabilities; with flip_tta, averaged with the mirrored face (2 invokes);
        then the model's prior correction and temperature."""
        probs = self._run(crop)
        if self.flip_tta:
            probs = (probs + self._run(crop[:, ::-1])) / 2.0
        return sharpen(self.correct(probs), self.temperature)

    def correct(self, probs: np.ndarray) -> np.ndarray:
        """The model's prior correction (output.prior_correction): FER2013's classes are far
        from even (17 happy faces for each disgusted one) and a model learns that prior;
        dividing it out, in part, moves labels towards the rarer classes. None: as is."""
        f = self.info.prior_factors
        if f is None:
            return probs
        q = probs * np.asarray(f, np.float32)
        total = q.sum(axis=-1, keepdims=True)
        return np.divide(q, total, out=np.full_like(q, 1.0 / q.shape[-1]), where=total > 0)

    def _run(self, crop: np.ndarray) -> np.ndarray:
        return self._invoke([crop])[0]

    def _resize(self, n: int) -> bool:
        if n == self._batch:
            return True
        try:
            self.interpreter.resize_tensor_input(self._in["index"], (n, *INPUT_SHAPE[1:]))
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            log.info("model keeps one face a call (%s)", str(exc).strip().splitlines()[0]
                     if str(exc).strip() else type(exc).__name__)
            self._batchable = False
            if self._batch != 1:
                self.interpreter.resize_tensor_input(self._in["index"], INPUT_SHAPE)
                self.interpreter.allocate_tensors()
            self._batch = 1
            return False
        self._batch = n
        return True

    def _invoke(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(n, classes) probabilities of crops run together, in one call where the model
        allows it."""
        if len(crops) > 1 and not (self._batchable and self._resize(len(crops))):
            return np.concatenate([self._invoke([c]) for c in crops])
        if len(crops) == 1:
            self._resize(1)  # at once where it already is
        x = np.stack([self.quantize(c) for c in crops])[..., None]
        self.interpreter.set_tensor(self._in["index"], x)
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self._out["index"]).reshape(len(crops), -1)
        probs = raw.astype(np.float32)
        if np.issubdtype(raw.dtype, np.integer) and self._out_scale:
            probs = (probs - self._out_zp) * self._out_scale
        probs = np.clip(probs, 0.0, None)
        total = probs.sum(axis=1, keepdims=True)
        return np.divide(probs, total, out=np.full_like(probs, 1.0 / probs.shape[1]),
                         where=total > 0)

    def classify(self, crops: Sequence[np.ndarray]) -> list[Prediction]:
        """Each face's prediction, as ``probabilities`` gives it, from one interpreter call
        for all of them and their mirrors."""
        if not crops:
            return []
        batch = list(crops) + ([c[:, ::-1] for c in crops] if self.flip_tta else [])
        probs = self._invoke(batch)
        n = len(crops)
        if self.flip_tta:
            probs = (probs[:n] + probs[n:]) / 2.0
        probs = sharpen(self.correct(probs), self.temperature)
        return [Prediction(tuple(float(p) for p in row), self.info.labels) for row in probs]
