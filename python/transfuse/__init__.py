"""Run models compiled by Transfuse from Python.

A compiled ``model.so`` exports the C API of
``runtime/include/transfuse/transfuse.h``; this module calls it through
ctypes, with NumPy arrays in and out::

    import transfuse
    model = transfuse.Model("model.so")      # or transfuse.compile("model.onnx")
    print(model.inputs)                      # names, dtypes, symbolic shapes
    out = model.run({"input_ids": ids, "attention_mask": mask})
    logits = out["logits"]                   # numpy.ndarray

Outputs the runtime allocates are handed to NumPy without a copy and freed
when the array is; ``run(..., outputs={"logits": buf})`` writes into a
caller's array instead. The GIL is released while a model runs, so other
Python threads go on meanwhile. One session runs one call at a time; a
thread may take its own with ``model.session()``, and sessions on several
threads then run at once, their parallel loops taking turns on the
runtime's one thread pool. That pool has ``TRANSFUSE_NUM_THREADS`` threads
(default: every CPU), read at the first run.

Errors raise ``transfuse.Error`` subclasses with the runtime's message:
``InvalidArgumentError`` (also a ValueError) for a wrong input count, name,
rank, shape, dtype or value, ``OutOfMemoryError`` (also a MemoryError),
``CompileError`` for ``compile``.

Install it with ``pip install python/`` (python/pyproject.toml), or put
``python/`` on ``PYTHONPATH``.
"""
import collections.abc
import ctypes
import json
import os
import shutil
import subprocess
import tempfile
import threading

import numpy as np

__version__ = "0.1.0"

__all__ = ["Model", "Session", "TensorInfo", "compile", "Error",
           "InvalidArgumentError", "OutOfMemoryError", "CompileError"]

_MAX_RANK = 8  # TF_MAX_RANK
_OK, _INVALID_ARGUMENT, _OUT_OF_MEMORY = 0, 1, 2


class Error(RuntimeError):
    """A failed call into a model, or a failed compile."""


class InvalidArgumentError(Error, ValueError):
    """Inputs (or output buffers) the model cannot run on."""


class OutOfMemoryError(Error, MemoryError):
    """A run needed more memory than the system gave."""


class CompileError(Error):
    """``transfuse compile`` failed; the message is its error output."""


def _bfloat16():
    try:
        import ml_dtypes
        return np.dtype(ml_dtypes.bfloat16)
    except ImportError:  # raw bits
        return np.dtype(np.uint16)


# tf_dtype codes (ONNX TensorProto's) and the NumPy dtypes they hold.
_DTYPES = {1: np.dtype(np.float32), 2: np.dtype(np.uint8),
           3: np.dtype(np.int8), 5: np.dtype(np.int16),
           6: np.dtype(np.int32), 7: np.dtype(np.int64),
           9: np.dtype(np.bool_), 10: np.dtype(np.float16),
           11: np.dtype(np.float64), 16: _bfloat16()}
_CODES = {dt: code for code, dt in _DTYPES.items()}
# The signature's dtype names (tf_dtype_name in runtime/src/core.cpp) are
# NumPy's.
_BY_NAME = {dt.name: code for code, dt in _DTYPES.items()}
_BY_NAME["bfloat16"] = 16  # also without ml_dtypes


class _Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int32),
                ("rank", ctypes.c_int32),
                ("shape", ctypes.c_int64 * _MAX_RANK),
                ("owned_by_runtime", ctypes.c_int32)]


TensorInfo = collections.namedtuple("TensorInfo",
                                    "name dtype shape index_bound")
TensorInfo.__doc__ = """An input or output of a model: its name, NumPy
dtype, shape (a tuple of ints and names of symbolic dims), and for an input
that indexes a table (token ids) the bound its values must stay under, else
None."""


def _load(path):
    """The model's library, with the C API's signatures declared."""
    try:
        lib = ctypes.CDLL(path, mode=os.RTLD_NOW | os.RTLD_LOCAL)
    except OSError as e:
        raise Error("cannot load %s: %s" % (path, e)) from None
    api = {
        "tf_model_signature": (ctypes.c_char_p, []),
        "tf_model_arena_bytes": (ctypes.c_uint64, []),
        "tf_session_create": (ctypes.c_int, [ctypes.POINTER(ctypes.c_void_p)]),
        "tf_session_destroy": (None, [ctypes.c_void_p]),
        "tf_run": (ctypes.c_int, [ctypes.c_void_p, ctypes.POINTER(_Tensor),
                                  ctypes.c_size_t, ctypes.POINTER(_Tensor),
                                  ctypes.c_size_t]),
        "tf_session_error": (ctypes.c_char_p, [ctypes.c_void_p]),
        "tf_tensor_release": (None, [ctypes.POINTER(_Tensor)]),
    }
    for name, (restype, argtypes) in api.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise Error("%s is not a model compiled by Transfuse: it does not "
                        "export %s" % (path, name)) from None
        fn.restype, fn.argtypes = restype, argtypes
    return lib


def _infos(entries):
    infos = []
    for e in entries:
        code = _BY_NAME.get(e["dtype"])
        dtype = _DTYPES[code] if code else e["dtype"]
        infos.append(TensorInfo(e["name"], dtype, tuple(e["shape"]),
                                e.get("index_bound")))
    return infos


class _RuntimeBuffer:
    """Owns an output the runtime allocated; frees it when NumPy is done."""
    __slots__ = ("tensor", "release")

    def __init__(self, tensor, release):
        self.tensor, self.release = tensor, release

    def __del__(self):
        self.release(ctypes.byref(self.tensor))


def _error(status, message):
    cls = {_INVALID_ARGUMENT: InvalidArgumentError,
           _OUT_OF_MEMORY: OutOfMemoryError}.get(status, Error)
    return cls(message)


def _known_names(kind, given, infos):
    """The model's names of `kind`; an error for one in `given` it lacks."""
    names = [i.name for i in infos]
    unknown = [n for n in given if n not in names]
    if unknown:
        raise InvalidArgumentError("unknown %s %r; the model's %ss are %s"
                                   % (kind, unknown[0], kind, ", ".join(names)))
    return names


class Model:
    """A model compiled by Transfuse (a ``.so``), loaded into this process.

    ``inputs`` and ``outputs`` list its TensorInfo in the order ``run``
    takes them; ``arena_bytes`` is the size of its planned buffer arena.
    """

    def __init__(self, path):
        self.path = os.path.abspath(path)
        if not os.path.isfile(self.path):
            raise FileNotFoundError("no such model: %s" % path)
        self._lib = _load(self.path)
        sig = json.loads(self._lib.tf_model_signature().decode())
        self.inputs = _infos(sig["inputs"])
        self.outputs = _infos(sig["outputs"])
        self.arena_bytes = int(self._lib.tf_model_arena_bytes())
        self._default = None
        self._default_lock = threading.Lock()

    def __repr__(self):
        return "<transfuse.Model %s: %d inputs, %d outputs>" % (
            self.path, len(self.inputs), len(self.outputs))

    def session(self):
        """A new session: its own run state, for one thread at a time."""
        return Session(self)

    def run(self, inputs, outputs=None):
        """``Session.run`` on the model's default session."""
        with self._default_lock:
            if self._default is None:
                self._default = Session(self)
        return self._default.run(inputs, outputs)


class Session:
    """A model's run state (``tf_session``). Calls on one session are
    serialized; use a session per thread to run in parallel."""

    def __init__(self, model):
        self.model = model
        self._lib = model._lib
        handle = ctypes.c_void_p()
        status = self._lib.tf_session_create(ctypes.byref(handle))
        if status != _OK:
            raise _error(status, "cannot create a session of %s (status %d)"
                         % (model.path, status))
        self._handle = handle
        self._lock = threading.Lock()

    def close(self):
        """Frees the session (also done when it is collected)."""
        with self._lock:
            if self._handle is not None:
                self._lib.tf_session_destroy(self._handle)
                self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_handle", None) is not None:
            self._lib.tf_session_destroy(self._handle)

    def _input_arrays(self, inputs):
        infos = self.model.inputs
        if isinstance(inputs, collections.abc.Mapping):
            names = _known_names("input", inputs, infos)
            missing = [n for n in names if n not in inputs]
            if missing:
                raise InvalidArgumentError("missing input %r" % missing[0])
            values = [inputs[n] for n in names]
        else:
            values = list(inputs)
            if len(values) != len(infos):
                raise InvalidArgumentError(
                    "the model takes %d inputs (%s), not %d"
                    % (len(infos), ", ".join(i.name for i in infos),
                       len(values)))
        arrays = []
        for info, value in zip(infos, values):
            if isinstance(value, np.ndarray):  # (not ascontiguousarray,
                # which makes a 0-d array 1-d)
                array = (value if value.flags.c_contiguous
                         else value.copy(order="C"))
            else:  # lists and scalars take the input's dtype
                array = np.array(value, dtype=info.dtype, order="C")
            if array.dtype not in _CODES:
                raise InvalidArgumentError(
                    "input %r: dtype %s is not one a model takes"
                    % (info.name, array.dtype))
            if array.ndim > _MAX_RANK:
                raise InvalidArgumentError(
                    "input %r: rank %d is over %d"
                    % (info.name, array.ndim, _MAX_RANK))
            arrays.append(array)
        return arrays

    def _output_arrays(self, outputs):
        infos = self.model.outputs
        if outputs is None:
            return [None] * len(infos)
        _known_names("output", outputs, infos)
        arrays = []
        for info in infos:
            array = outputs.get(info.name)
            if array is not None and not (
                    isinstance(array, np.ndarray)
                    and array.flags.c_contiguous and array.flags.writeable):
                raise InvalidArgumentError(
                    "output %r: a caller's buffer must be a writeable, "
                    "C-contiguous numpy.ndarray" % info.name)
            if array is not None and array.dtype not in _CODES:
                raise InvalidArgumentError(
                    "output %r: dtype %s is not one a model gives"
                    % (info.name, array.dtype))
            arrays.append(array)
        return arrays

    @staticmethod
    def _fill(tensor, array):
        tensor.data = array.ctypes.data if array.size else None
        tensor.dtype = _CODES[array.dtype]
        tensor.rank = array.ndim
        for d, n in enumerate(array.shape):
            tensor.shape[d] = n

    def run(self, inputs, outputs=None):
        """Runs the model.

        inputs: a dict from input name to array, or a sequence in the order
          of ``model.inputs``. Arrays are used in place when C-contiguous
          (else copied); lists take the input's dtype. No other conversion:
          an array of the wrong dtype is an error.
        outputs: optional dict from output name to a caller's array of the
          result's dtype and shape, written in place.
        Returns a dict from output name to array (the caller's where given).
        """
        arrays = self._input_arrays(inputs)
        out_arrays = self._output_arrays(outputs)
        c_in = (_Tensor * max(len(arrays), 1))()
        for t, a in zip(c_in, arrays):
            self._fill(t, a)
        c_out = (_Tensor * max(len(out_arrays), 1))()
        for t, a in zip(c_out, out_arrays):
            if a is not None:
                self._fill(t, a)
        with self._lock:
            if self._handle is None:
                raise Error("the session is closed")
            status = self._lib.tf_run(self._handle, c_in, len(arrays), c_out,
                                      len(out_arrays))
            message = (self._lib.tf_session_error(self._handle).decode(
                errors="replace") if status != _OK else "")
        results = {}
        for info, t, a in zip(self.model.outputs, c_out, out_arrays):
            if a is not None:
                results[info.name] = a
                # An empty caller's array passes no data, which asks the
                # runtime for a buffer.
                self._lib.tf_tensor_release(ctypes.byref(t))
            elif t.owned_by_runtime:
                results[info.name] = self._adopt(t)
        if status != _OK:
            results.clear()  # frees the outputs the runtime gave
            raise _error(status, message)
        return results

    def _adopt(self, tensor):
        """A runtime-allocated output as an array that frees it when done."""
        owned = _Tensor.from_buffer_copy(tensor)
        owner = _RuntimeBuffer(owned, self._lib.tf_tensor_release)
        shape = tuple(tensor.shape[d] for d in range(tensor.rank))
        dtype = _DTYPES.get(tensor.dtype)
        if dtype is None:
            raise Error("the model gave an output of unknown dtype code %d"
                        % tensor.dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes == 0:
            return np.empty(shape, dtype)  # `owner` frees the 1-byte block
        buffer = (ctypes.c_char * nbytes).from_address(tensor.data)
        buffer._owner = owner
        return np.frombuffer(buffer, dtype).reshape(shape)


def _find_compiler():
    env = os.environ.get("TRANSFUSE_BIN_DIR")
    if env:
        return os.path.join(env, "transfuse")
    found = shutil.which("transfuse")
    if found:
        return found
    # This file in a source checkout: python/transfuse/, next to build/bin.
    here = os.path.dirname(os.path.abspath(__file__))
    built = os.path.join(here, os.pardir, os.pardir, "build", "bin",
                         "transfuse")
    if os.path.isfile(built):
        return os.path.normpath(built)
    raise CompileError("cannot find the transfuse compiler: set "
                       "TRANSFUSE_BIN_DIR or put it in PATH")


def compile(onnx_path, output=None, *, precision=None, dims=None,
            fusion=True, args=(), compiler=None):
    """Compiles an ONNX model with ``transfuse compile`` and loads it.

    output: where the ``.so`` goes; by default a temporary file, removed
      once loaded.
    precision: "f32" or "bf16" (``--precision``).
    dims: {symbolic dim: size} (``--dim``), for static shapes.
    fusion: False for ``--no-fusion``.
    args: more command-line options, e.g. ("--attention=memory_efficient",).
    compiler: the ``transfuse`` executable (default: TRANSFUSE_BIN_DIR, then
      PATH, then a source checkout's build/bin).
    Raises CompileError with the compiler's messages when it fails.
    """
    exe = compiler or _find_compiler()
    cmd = [exe, "compile", os.fspath(onnx_path), "--quiet"]
    if precision:
        cmd.append("--precision=%s" % precision)
    for name, size in (dims or {}).items():
        cmd.append("--dim=%s=%d" % (name, size))
    if not fusion:
        cmd.append("--no-fusion")
    cmd.extend(args)
    tmpdir = None
    if output is None:
        tmpdir = tempfile.mkdtemp(prefix="transfuse-")
        output = os.path.join(tmpdir, "model.so")
    try:
        try:
            p = subprocess.run(cmd + ["-o", os.fspath(output)],
                               capture_output=True, text=True)
        except OSError as e:
            raise CompileError("cannot run %s: %s" % (exe, e)) from None
        if p.returncode != 0:
            raise CompileError(p.stderr.strip() or
                               "transfuse compile exited with status %d"
                               % p.returncode)
        return Model(output)  # loaded: the file may go
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
