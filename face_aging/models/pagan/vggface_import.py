"""Convert the public VGG-Face weights (Parkhi et al., BMVC 2015) once into a TF checkpoint PAGAN loads.

Nothing is downloaded: the user supplies one of the published files and `python main.py --model import --source
PATH` converts it into checkpoints/vgg_face: a TF checkpoint `vgg_face` and `vgg_face.json` (the
architecture, mean colour and source). Accepted sources:

- MatConvNet `.mat`, read with scipy (no MATLAB needed), in each layout it was published in:
  * SimpleNN, current MatConvNet (vgg-face.mat of MatConvNet's pretrained-model page): `layers` (a cell of structs
    with name, type 'conv'/'relu'/'pool'/..., weights = {filters, biases}, stride, pad) and `meta` (normalization
    .averageImage / .imageSize, classes.description), either as top-level variables or inside a struct `net`;
  * SimpleNN, old MatConvNet (vgg_face_matconvnet): layers with separate `filters` and `biases` fields, and
    `normalization` / `classes` where newer files have `meta` (what vl_simplenn_tidy upgrades);
  * DagNN (DagNN.saveobj): a struct array `layers` (name, type 'dagnn.Conv'/..., inputs, outputs, params = names,
    block = pad / stride / ...), a struct array `params` (name, value) and `meta`.
  MatConvNet arrays are H x W x C(in) x C(out), which is TF's HWIO in the same index order, and its convolution is
  a correlation as TF's is, so conv filters are used as they are. fc6/fc7/fc8 are convolutions there (fc6 7x7 on
  the 7x7x512 map, the others 1x1): reshaping a filter bank in (H, W, C) order gives the Dense kernel for the
  NHWC-flattened map.
- PyTorch `vgg_face_dag.pth` (a state_dict conv1_1.weight ... fc8.bias), which needs torch: conv weights are OIHW,
  Linear weights [out, in], and fc6's input was flattened in (C, H, W) order, so its columns are permuted to (H, W, C).

The architecture (widths, fc units, classes, image size) is read from the array shapes, so a narrow test network in
the same format converts as the real one does.
"""

import errno
import os

import numpy as np

from face_aging.models.pagan import frozen
from face_aging.models.pagan.vgg import CONV_LAYERS, FC_LAYERS, VGG_FACE_MEAN_RGB, VGG16
from face_aging.models.pagan.vgg_store import WeightsError, write_vgg

WEIGHT_LAYERS = CONV_LAYERS + FC_LAYERS

_CONV_TYPES = ("conv", "dagnn.Conv")
_POOL_TYPES = ("pool", "dagnn.Pooling")


# ----------------------------------------------------------------------------------------------------------------
# MatConvNet .mat


def _unwrap(value):
    """Strip the 1x1 object arrays loadmat wraps around every struct, cell element and field."""
    while isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        value = value.flat[0]
    return value


def _elements(value):
    """The items of a cell array or struct array (any shape), each unwrapped."""
    value = _unwrap(value)
    if isinstance(value, np.ndarray) and value.dtype == object:
        return [_unwrap(v) for v in value.flatten(order="F")]
    return [value]


def _field(struct, name):
    """A field of a loadmat struct (mat_struct) or of the file's top-level variables (dict); None if absent."""
    if isinstance(struct, dict):
        return struct.get(name)
    if hasattr(struct, "_fieldnames"):
        return getattr(struct, name) if name in struct._fieldnames else None
    return None


def _fieldnames(struct):
    if isinstance(struct, dict):
        return sorted(k for k in struct if not k.startswith("__"))
    return list(getattr(struct, "_fieldnames", []))


def _text(value):
    value = _unwrap(value)
    if isinstance(value, np.ndarray):
        if value.size == 0:
            return ""
        if value.dtype.kind == "U":
            return "".join(str(v) for v in value.flatten())
        return None
    return value if isinstance(value, str) else None


def _numbers(value, dtype=np.float64):
    """A numeric array (None if `value` is absent or not numbers). float32 for weights: VGG-Face's are single
    precision, and a float64 copy of fc6 alone would be 800 MB."""
    value = _unwrap(value)
    if value is None:
        return None
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        return None
    return array.astype(dtype, copy=False)


def _as_filter(array, what, path):
    """A MatConvNet filter bank as float32 H x W x Cin x Cout (MATLAB drops trailing singleton dimensions)."""
    array = _numbers(array, np.float32)
    if array is None or array.ndim < 2 or array.ndim > 4 or array.size == 0:
        shape = None if array is None else array.shape
        raise WeightsError(f"{path}: {what} filters are not a numeric H x W x Cin x Cout array (got {shape})")
    while array.ndim < 4:
        array = array[..., None]
    return array


def _as_bias(array, cout, what, path):
    array = _numbers(array, np.float32)
    if array is None or array.size == 0:
        return np.zeros([cout], np.float32)  # a layer without bias (DagNN hasBias false)
    if array.size != cout:
        raise WeightsError(f"{path}: {what} has {array.size} biases for {cout} filters")
    return array.reshape(-1)


def _check_geometry(name, pad, stride, path):
    """Refuse a conv whose padding or stride is not VGG's (pad 1 for 3x3 convs, 0 for fc; stride 1)."""
    want_pad = 0 if name in FC_LAYERS else 1
    pad, stride = _numbers(pad), _numbers(stride)
    if pad is not None and pad.size and not np.all(pad == want_pad):
        raise WeightsError(f"{path}: layer {name} has padding {pad.reshape(-1).tolist()}, VGG-16 uses {want_pad}")
    if stride is not None and stride.size and not np.all(stride == 1):
        raise WeightsError(f"{path}: layer {name} has stride {stride.reshape(-1).tolist()}, VGG-16 uses 1")


def _simplenn_weights(layer, name, path):
    weights = _field(layer, "weights")
    if weights is not None:
        items = _elements(weights)
        if len(items) < 1 or len(items) > 2:
            raise WeightsError(f"{path}: layer {name}: `weights` should be a cell {{filters, biases}}, "
                               f"it holds {len(items)} items")
        filters = items[0]
        biases = items[1] if len(items) == 2 else None
    elif _field(layer, "filters") is not None:  # MatConvNet before beta-12 (what vl_simplenn_tidy upgrades)
        filters, biases = _field(layer, "filters"), _field(layer, "biases")
    else:
        raise WeightsError(f"{path}: conv layer {name} has neither `weights` nor `filters`/`biases` fields "
                           f"(it has {', '.join(_fieldnames(layer))})")
    return filters, biases, _field(layer, "pad"), _field(layer, "stride")


def _dagnn_weights(layer, name, param_values, path):
    names = [_text(v) for v in _elements(_field(layer, "params"))] if _field(layer, "params") is not None else []
    names = [n for n in names if n]
    if not names:
        raise WeightsError(f"{path}: DagNN layer {name} lists no parameters")
    missing = [n for n in names if n not in param_values]
    if missing:
        raise WeightsError(f"{path}: DagNN layer {name} uses parameter(s) {', '.join(missing)}, which the file's "
                           f"`params` array does not hold")
    block = _unwrap(_field(layer, "block"))
    pad = _field(block, "pad") if block is not None else None
    stride = _field(block, "stride") if block is not None else None
    biases = param_values[names[1]] if len(names) > 1 else None
    return param_values[names[0]], biases, pad, stride


def _mean_rgb(normalization, path):
    average = _numbers(_field(normalization, "averageImage")) if normalization is not None else None
    if average is None or average.size == 0:
        return None
    if average.size % 3 or (average.size != 3 and average.shape[-1] != 3):
        raise WeightsError(f"{path}: normalization.averageImage has shape {average.shape}; expected 3 numbers "
                           f"or an H x W x 3 image")
    # An average image is reduced to its per-channel mean: the model subtracts one colour at any input size.
    return tuple(float(v) for v in average.reshape(-1, 3).mean(axis=0))


def _class_names(classes):
    if classes is None:
        return []
    description = _field(classes, "description")
    if description is None:
        return []
    description = _unwrap(description)
    if isinstance(description, str):
        return [description]
    if isinstance(description, np.ndarray) and description.dtype.kind == "U":
        return [str(v) for v in description.flatten()]
    return [t for t in (_text(v) for v in _elements(description)) if t is not None]


def _check_source(path):
    """FileNotFoundError for a missing file; WeightsError naming the file and the reason for one that is not a
    readable, non-empty regular file (a directory, a symbolic link loop, no read permission, 0 bytes)."""
    if os.path.islink(path):
        try:
            os.stat(path)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise WeightsError(f"{path} is a symbolic link loop (too many levels of symbolic links); point "
                                   f"--source at the weights file itself") from None
            raise FileNotFoundError(f"no VGG-Face weights file at {path} (a symbolic link to "
                                    f"{os.readlink(path)!r}, which does not exist)") from None
    if os.path.isdir(path):
        raise WeightsError(f"{path} is a directory, not a weights file; pass the .mat (or .pth) file in it")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no VGG-Face weights file at {path}")
    try:
        with open(path, "rb") as f:
            empty = not f.read(1)
    except OSError as error:
        raise WeightsError(f"{path} cannot be read ({error.strerror or error})") from None
    if empty:
        raise WeightsError(f"{path} is empty (0 bytes): an interrupted download or copy? Get vgg_face.mat again")


def _loadmat(path):
    import scipy.io  # scipy only when a .mat is converted

    try:
        return scipy.io.loadmat(path, squeeze_me=False, struct_as_record=False)
    except NotImplementedError as error:  # scipy's answer to MATLAB v7.3 files
        raise WeightsError(f"{path} is a MATLAB v7.3 (HDF5) file, which scipy cannot read. Re-save it in the "
                           f"older format from MATLAB or Octave (`net = load('{os.path.basename(path)}'); "
                           f"save('vgg_face_v7.mat', '-struct', 'net', '-v7')`), or use vgg_face_dag.pth") from error
    except Exception as error:  # scipy raises ValueError, TypeError, struct.error... on foreign files
        raise WeightsError(f"{path} is not a readable MATLAB .mat file ({type(error).__name__}: {error}): it is "
                           f"damaged, truncated (an interrupted download?) or not a .mat file at all; expected "
                           f"MatConvNet's vgg_face.mat or vgg-face.mat") from error


def read_matconvnet(path):
    """(params, meta) from a MatConvNet VGG-Face .mat in any of its published layouts (see the module docstring).

    params: {"conv1_1": (kernel HWIO float32, bias), ..., "fc6": (Dense kernel [in, out], in (H, W, C) flatten
    order, bias), "fc7", "fc8"}. meta: {"mean_rgb": (r, g, b), "image_size": int, "class_names": [...],
    "layout": "simplenn" | "simplenn-old" | "dagnn", "mean_from_file": bool}.
    """
    path = os.fspath(path)
    _check_source(path)
    root = _loadmat(path)
    container = _unwrap(root["net"]) if "net" in root else root
    if _field(container, "layers") is None:
        found = ", ".join(_fieldnames(container)) or "nothing"
        raise WeightsError(f"{path} holds no MatConvNet network: expected a `layers` variable (or a struct `net` "
                           f"with a `layers` field), found {found}. Is it MatConvNet's vgg_face.mat?")
    layers = [layer for layer in _elements(_field(container, "layers"))]
    param_array = _field(container, "params")
    dagnn = param_array is not None
    param_values = {}
    if dagnn:
        for param in _elements(param_array):
            name = _text(_field(param, "name"))
            if name:
                param_values[name] = _field(param, "value")

    raw, pools, old = {}, 0, False
    for index, layer in enumerate(layers):
        if not _fieldnames(layer):
            raise WeightsError(f"{path}: layer {index + 1} is not a struct with name/type fields")
        name = _text(_field(layer, "name")) or f"layer{index + 1}"
        kind = _text(_field(layer, "type")) or ""
        if kind in _POOL_TYPES:
            pools += 1
        if kind not in _CONV_TYPES:
            continue
        if name in raw:
            raise WeightsError(f"{path}: two conv layers are named {name}")
        if dagnn:
            raw[name] = _dagnn_weights(layer, name, param_values, path)
        else:
            old = old or _field(layer, "weights") is None
            raw[name] = _simplenn_weights(layer, name, path)

    missing = [name for name in WEIGHT_LAYERS if name not in raw]
    extra = [name for name in raw if name not in WEIGHT_LAYERS]
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"lacks conv layer(s) {', '.join(missing)}")
        if extra:
            problems.append(f"has conv layer(s) VGG-16 does not: {', '.join(extra)}")
        raise WeightsError(f"{path} {' and '.join(problems)}; its conv layers are "
                           f"{', '.join(raw) or 'none'}. Expected VGG-Face's VGG-16: "
                           f"{', '.join(WEIGHT_LAYERS)}")
    if pools and pools != 5:
        raise WeightsError(f"{path} has {pools} pooling layers; VGG-16 has 5")

    params, fc6_side = {}, None
    for name in WEIGHT_LAYERS:
        filters, biases, pad, stride = raw[name]
        kernel = _as_filter(filters, name, path)
        _check_geometry(name, pad, stride, path)
        bias = _as_bias(biases, kernel.shape[3], name, path)
        if name in FC_LAYERS:
            # MatConvNet's fc layers are VALID convolutions covering the whole map: flatten the filter bank in
            # (H, W, C) order, which is the order keras.layers.Flatten / tf.reshape give an NHWC map.
            if kernel.shape[0] != kernel.shape[1]:
                raise WeightsError(f"{path}: {name} filters are {kernel.shape[0]}x{kernel.shape[1]}; VGG's fc "
                                   f"layers are square")
            if name == "fc6":
                fc6_side = kernel.shape[0]
            kernel = kernel.reshape(-1, kernel.shape[3])
        elif kernel.shape[:2] != (3, 3):
            raise WeightsError(f"{path}: {name} filters are {kernel.shape[0]}x{kernel.shape[1]}; VGG-16's "
                               f"convolutions are 3x3")
        params[name] = (kernel, bias)

    meta_struct = _unwrap(_field(container, "meta"))
    normalization = _unwrap(_field(meta_struct, "normalization") if meta_struct is not None else None)
    classes = _unwrap(_field(meta_struct, "classes") if meta_struct is not None else None)
    if normalization is None:  # old layout: at the top level of the network
        normalization = _unwrap(_field(container, "normalization"))
    if classes is None:
        classes = _unwrap(_field(container, "classes"))
    mean = _mean_rgb(normalization, path)
    image_size = 32 * fc6_side
    size = _numbers(_field(normalization, "imageSize")) if normalization is not None else None
    if size is not None and size.size:
        image_size = int(size.reshape(-1)[0])
    meta = {"mean_rgb": mean if mean is not None else VGG_FACE_MEAN_RGB, "mean_from_file": mean is not None,
            "image_size": image_size, "class_names": _class_names(classes),
            "layout": "dagnn" if dagnn else ("simplenn-old" if old else "simplenn")}
    return params, meta


# ----------------------------------------------------------------------------------------------------------------
# PyTorch .pth


def read_pytorch(path):
    """(params, meta) from vgg_face_dag.pth, a PyTorch state_dict (conv1_1.weight ... fc8.bias). Needs torch.

    The file carries no normalisation: meta's mean_rgb is the published VGG-Face mean (the one its model definition
    hard-codes) and image_size comes from fc6's input width.
    """
    path = os.fspath(path)
    _check_source(path)
    try:
        import torch
    except ImportError as error:
        raise WeightsError(f"{path}: reading a PyTorch .pth file needs torch, which is not installed. torch is "
                           f"needed only for .pth files: MatConvNet's vgg_face.mat converts without it "
                           f"(`{frozen.IMPORT_COMMAND}`)") from error
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise WeightsError(f"{path} cannot be read as a PyTorch state_dict ({type(error).__name__}: {error}); "
                           f"expected vgg_face_dag.pth, a dict conv1_1.weight ... fc8.bias") from error
    if hasattr(state, "state_dict"):
        state = state.state_dict()
    if not isinstance(state, dict):
        raise WeightsError(f"{path} holds a {type(state).__name__}, not a state_dict of named tensors")
    arrays = {str(key): value.detach().cpu().float().numpy() if hasattr(value, "detach") else value
              for key, value in state.items()}
    return params_from_state_dict(arrays, path)


def params_from_state_dict(state, path="state_dict"):
    """(params, meta) from vgg_face_dag's state_dict as numpy arrays {"conv1_1.weight": OIHW, ...}.

    Kept apart from read_pytorch so that the layout mapping is plain numpy, checkable where torch is not installed.
    """
    missing = [f"{name}.{part}" for name in WEIGHT_LAYERS for part in ("weight", "bias")
               if f"{name}.{part}" not in state]
    if missing:
        found = ", ".join(sorted(map(str, state))[:12])
        raise WeightsError(f"{path} lacks {', '.join(missing)}; it holds {found or 'nothing'}. Expected "
                           f"vgg_face_dag.pth (keys conv1_1.weight ... fc8.bias)")
    extra = sorted(str(k) for k in state
                   if str(k).startswith(("conv", "fc")) and str(k).split(".")[0] not in WEIGHT_LAYERS)
    if extra:
        raise WeightsError(f"{path} has layers VGG-16 does not: {', '.join(extra)}")

    def array(key):
        return np.asarray(state[key], dtype=np.float32)

    params = {}
    for name in CONV_LAYERS:
        weight = array(f"{name}.weight")
        if weight.ndim != 4 or weight.shape[2:] != (3, 3):
            raise WeightsError(f"{path}: {name}.weight has shape {weight.shape}; expected [out, in, 3, 3]")
        params[name] = (np.ascontiguousarray(weight.transpose(2, 3, 1, 0)), array(f"{name}.bias"))
    channels = params["conv5_3"][0].shape[3]
    for name in FC_LAYERS:
        weight = array(f"{name}.weight")
        if weight.ndim != 2:
            raise WeightsError(f"{path}: {name}.weight has shape {weight.shape}; expected a Linear [out, in]")
        if name == "fc6":
            side = int(round((weight.shape[1] / channels) ** 0.5))
            if side * side * channels != weight.shape[1]:
                raise WeightsError(f"{path}: fc6.weight takes {weight.shape[1]} inputs, not a square map of "
                                   f"{channels} channels (conv5_3's width)")
            # PyTorch flattened the NCHW map as (C, H, W); the Keras Dense sees (H, W, C).
            weight = weight.reshape(-1, channels, side, side).transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)
        params[name] = (np.ascontiguousarray(weight.T), array(f"{name}.bias"))
    meta = {"mean_rgb": VGG_FACE_MEAN_RGB, "mean_from_file": False, "image_size": 32 * side, "class_names": [],
            "layout": "pytorch-state-dict"}
    return params, meta


# ----------------------------------------------------------------------------------------------------------------
# Conversion and loading


def _architecture(params, meta, path):
    """VGG16 constructor arguments implied by the array shapes; WeightsError if the shapes do not chain."""
    channels = []
    cin = 3
    for name in CONV_LAYERS:
        kernel, bias = params[name]
        if kernel.ndim != 4 or kernel.shape[2] != cin or bias.shape != (kernel.shape[3],):
            raise WeightsError(f"{path}: {name} has kernel {kernel.shape} and bias {bias.shape}; expected "
                               f"3 x 3 x {cin} x C and C biases (C = the width of its block)")
        cin = kernel.shape[3]
        if name.endswith("_1"):
            channels.append(cin)
        elif cin != channels[-1]:
            raise WeightsError(f"{path}: {name} has {cin} filters but its block starts with {channels[-1]}")
    fc6, fc7, fc8 = (params[name][0] for name in FC_LAYERS)
    fc_units = fc7.shape[1]
    side = int(round((fc6.shape[0] / channels[-1]) ** 0.5))
    if side * side * channels[-1] != fc6.shape[0]:
        raise WeightsError(f"{path}: fc6 takes {fc6.shape[0]} inputs, not a square map of {channels[-1]} channels")
    if fc6.shape[1] != fc_units or fc7.shape[0] != fc_units or fc8.shape[0] != fc_units:
        raise WeightsError(f"{path}: fc layer shapes do not chain: fc6 {fc6.shape}, fc7 {fc7.shape}, fc8 {fc8.shape}")
    for name in FC_LAYERS:
        if params[name][1].shape != (params[name][0].shape[1],):
            raise WeightsError(f"{path}: {name} has {params[name][1].size} biases for {params[name][0].shape[1]} units")
    image_size = 32 * side
    if meta.get("image_size") not in (None, image_size):
        raise WeightsError(f"{path} says its input is {meta['image_size']} pixels wide, but fc6 fits a "
                           f"{side}x{side} final map, i.e. {image_size}x{image_size} images")
    return {"num_classes": int(fc8.shape[1]), "image_size": image_size, "channels": tuple(channels),
            "fc_units": int(fc_units), "mean_rgb": tuple(float(m) for m in meta["mean_rgb"])}


def _assign(model, params, path):
    """Set every weight of `model` from params; WeightsError (nothing assigned) on any shape mismatch."""
    plan = []
    for name in WEIGHT_LAYERS:
        layer = model.layer(name)
        for variable, value in zip((layer.kernel, layer.bias), params[name]):
            if tuple(variable.shape) != value.shape:
                raise WeightsError(f"{path}: {name} {variable.name} has shape {value.shape}, the model needs "
                                   f"{tuple(variable.shape)}")
            plan.append((variable, value))
    assigned = {id(variable) for variable, _ in plan}
    unassigned = [w.path for w in model.weights if id(w) not in assigned]
    if unassigned:  # a "successful" conversion would leave these at their random initial values
        raise WeightsError(f"{path}: the conversion has no value for {', '.join(unassigned)}")
    for variable, value in plan:
        variable.assign(value)


def _read(source):
    extension = os.path.splitext(source)[1].lower()
    if extension == ".mat":
        return read_matconvnet(source)
    if extension in (".pth", ".pt"):
        return read_pytorch(source)
    raise WeightsError(f"{source}: unknown VGG-Face weights format {extension or '(no extension)'!r}; expected "
                       f"MatConvNet's .mat (vgg_face.mat / vgg-face.mat) or PyTorch's vgg_face_dag.pth")


def convert(source, out_dir=frozen.VGG_FACE_DIR):
    """Read a VGG-Face weights file (.mat, .pth or .pt), check it, and write out_dir/vgg_face + vgg_face.json.

    Everything is read and checked before out_dir is touched, so a bad source leaves a previous conversion intact.
    Returns the model.
    """
    source = os.fspath(source)
    params, meta = _read(source)
    architecture = _architecture(params, meta, source)
    model = VGG16(name="vgg_face", **architecture)
    _assign(model, params, source)
    write_vgg(model, out_dir, frozen.VGG_FACE_NAME, {
        "format": frozen.VGG_FACE_FORMAT,
        "mean_rgb": list(model.mean_rgb),
        "mean_from_file": bool(meta.get("mean_from_file", False)),
        "source": os.path.abspath(source),
        "source_layout": meta.get("layout"),
        "num_classes": model.num_classes,
        "num_class_names": len(meta.get("class_names") or []),
    })
    return model
