"""seqc CUDA plan runner for Python (part of seqc's torch target; copied next to the generated modules).

Executes a seqc CUDA launch plan (runtime/cuda/plan.ts: forms, vars, workspaces, launch/zero/gemm
steps, u32 uniform and override structs) on raw device pointers, through a small ctypes binding to
the CUDA driver API (libcuda: cuModuleLoadData / cuModuleGetFunction / cuLaunchKernel). ctypes
rather than a compiled extension or CuPy: nothing to build or install beyond torch itself, the PTX
in the plan is loaded (and JIT-compiled by the driver) as is, and launches go on torch's current
stream. This file does not import torch: seqc_torch.py hands it pointers, an allocator for
workspaces and a stream handle.

It mirrors runtime/cuda/runner.ts (the Node runner): the same form choice, environment, uniforms,
overrides, grid split and launch arguments (test/torch-target.test.ts compares the two launch by launch).
"""

import ctypes
import ctypes.util

_INT_MAX = 2147483647


class CudaError(RuntimeError):
    """A CUDA driver call failed, or no kernel image fits the device."""


# ---------------------------------------------------------------------------------------------
# size expressions (runtime/plan.ts evalSize)


def eval_size(e, env):
    """Evaluate a plan size expression (number, variable name, or [op, ...args]) over `env`."""
    if isinstance(e, bool):
        return int(e)
    if isinstance(e, (int, float)):
        return int(e)
    if isinstance(e, str):
        if e not in env:
            raise KeyError("size variable '%s' is not bound" % e)
        return env[e]
    op, args = e[0], [eval_size(a, env) for a in e[1:]]
    if op == "+":
        return sum(args)
    if op == "*":
        r = 1
        for a in args:
            r *= a
        return r
    if op == "-":
        return args[0] - args[1]
    if op == "/":
        return args[0] // args[1]
    if op == "ceilDiv":
        return -((-args[0]) // args[1])
    if op == "min":
        return min(args)
    if op == "max":
        return max(args)
    if op == "pow2floor":
        return 0 if args[0] < 1 else 1 << (args[0].bit_length() - 1)
    if op == "pow2ceil":
        return 1 if args[0] <= 1 else 1 << (args[0] - 1).bit_length()
    if op == ">=":
        return 1 if args[0] >= args[1] else 0
    if op == "select":
        return args[1] if args[0] != 0 else args[2]
    raise ValueError("unknown size operation '%s'" % op)


# ---------------------------------------------------------------------------------------------
# the driver API through ctypes

_ATTR = {"max_threads": 1, "multiprocessors": 16, "cc_major": 75, "cc_minor": 76, "smem_optin": 97}
_FUNC_ATTR_MAX_DYNAMIC_SHARED = 8


class Driver:
    """The few libcuda entry points a plan needs. One per process (see driver())."""

    def __init__(self):
        name = ctypes.util.find_library("cuda") or "libcuda.so.1"
        try:
            lib = ctypes.CDLL(name)
        except OSError as e:
            raise CudaError("the CUDA driver (libcuda) could not be loaded: %s" % e) from None
        vp, u, i, sz = ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_size_t
        sig = {
            "cuInit": [u],
            "cuGetErrorName": [i, ctypes.POINTER(ctypes.c_char_p)],
            "cuDeviceGet": [ctypes.POINTER(i), i],
            "cuDeviceGetAttribute": [ctypes.POINTER(i), i, i],
            "cuDeviceGetName": [ctypes.c_char_p, i, i],
            "cuDevicePrimaryCtxRetain": [ctypes.POINTER(vp), i],
            "cuCtxSetCurrent": [vp],
            "cuModuleLoadData": [ctypes.POINTER(vp), ctypes.c_char_p],
            "cuModuleGetFunction": [ctypes.POINTER(vp), vp, ctypes.c_char_p],
            "cuFuncSetAttribute": [vp, i, i],
            "cuOccupancyMaxActiveBlocksPerMultiprocessor": [ctypes.POINTER(i), vp, i, sz],
            "cuLaunchKernel": [vp, u, u, u, u, u, u, u, vp, ctypes.POINTER(vp), ctypes.POINTER(vp)],
            "cuLaunchCooperativeKernel": [vp, u, u, u, u, u, u, u, vp, ctypes.POINTER(vp)],
        }
        for fn, args in sig.items():
            f = getattr(lib, fn)
            f.argtypes = args
            f.restype = i
        self.lib = lib
        self._ctx = {}
        self._info = {}
        self.check(lib.cuInit(0), "cuInit")

    def check(self, rc, what):
        if rc != 0:
            name = ctypes.c_char_p()
            self.lib.cuGetErrorName(rc, ctypes.byref(name))
            raise CudaError("%s failed: %s (%d)" % (what, (name.value or b"?").decode(), rc))

    def use(self, ordinal):
        """Make device `ordinal`'s primary context (the one torch uses) current on this thread."""
        ctx = self._ctx.get(ordinal)
        if ctx is None:
            dev = ctypes.c_int()
            self.check(self.lib.cuDeviceGet(ctypes.byref(dev), ordinal), "cuDeviceGet(%d)" % ordinal)
            ctx = ctypes.c_void_p()
            self.check(self.lib.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev.value), "cuDevicePrimaryCtxRetain")
            self._ctx[ordinal] = ctx
        self.check(self.lib.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")

    def info(self, ordinal):
        if ordinal not in self._info:
            dev = ctypes.c_int()
            self.check(self.lib.cuDeviceGet(ctypes.byref(dev), ordinal), "cuDeviceGet(%d)" % ordinal)
            out = {}
            for k, a in _ATTR.items():
                v = ctypes.c_int()
                self.check(self.lib.cuDeviceGetAttribute(ctypes.byref(v), a, dev.value), "cuDeviceGetAttribute(%d)" % a)
                out[k] = v.value
            name = ctypes.create_string_buffer(256)
            self.check(self.lib.cuDeviceGetName(name, 256, dev.value), "cuDeviceGetName")
            self._info[ordinal] = {
                "name": name.value.decode(),
                "sm": out["cc_major"] * 10 + out["cc_minor"],
                "multiprocessors": out["multiprocessors"],
                "max_threads": out["max_threads"],
                "smem_optin": out["smem_optin"],
            }
        return self._info[ordinal]

    def load_module(self, image):
        m = ctypes.c_void_p()
        data = image if isinstance(image, bytes) else image.encode() + b"\0"
        self.check(self.lib.cuModuleLoadData(ctypes.byref(m), data), "cuModuleLoadData")
        return m

    def function(self, module, name):
        f = ctypes.c_void_p()
        self.check(self.lib.cuModuleGetFunction(ctypes.byref(f), module, name.encode()), "cuModuleGetFunction(%s)" % name)
        return f

    def set_max_dynamic_shared(self, fn, nbytes):
        self.check(self.lib.cuFuncSetAttribute(fn, _FUNC_ATTR_MAX_DYNAMIC_SHARED, nbytes), "cuFuncSetAttribute")

    def max_active_blocks(self, fn, threads, shared):
        n = ctypes.c_int()
        self.check(self.lib.cuOccupancyMaxActiveBlocksPerMultiprocessor(ctypes.byref(n), fn, threads, shared), "cuOccupancyMaxActiveBlocksPerMultiprocessor")
        return n.value

    def launch(self, fn, name, grid, block, shared, stream, args, cooperative=False):
        """args: ("ptr", int) | ("u32", int) | ("struct", [u32...]); each is passed by address (kernelParams)."""
        holders = []
        for kind, v in args:
            if kind == "ptr":
                holders.append(ctypes.c_uint64(v))
            elif kind == "u32":
                holders.append(ctypes.c_uint32(v & 0xFFFFFFFF))
            else:
                vals = list(v) or [0]
                holders.append((ctypes.c_uint32 * len(vals))(*[x & 0xFFFFFFFF for x in vals]))
        params = (ctypes.c_void_p * max(1, len(holders)))(*[ctypes.addressof(h) for h in holders])
        gx, gy = grid
        s = ctypes.c_void_p(stream)
        if cooperative:
            rc = self.lib.cuLaunchCooperativeKernel(fn, gx, gy, 1, block, 1, 1, shared, s, params)
        else:
            rc = self.lib.cuLaunchKernel(fn, gx, gy, 1, block, 1, 1, shared, s, params, None)
        self.check(rc, "launch of %s (grid %dx%d, block %d, %d bytes shared)" % (name, gx, gy, block, shared))


_DRIVER = None


def driver():
    global _DRIVER
    if _DRIVER is None:
        _DRIVER = Driver()
    return _DRIVER


# ---------------------------------------------------------------------------------------------
# one plan on one device


def _image_for(images, cubins, sm, what):
    """The kernel image for compute capability `sm`: its cubin, else the newest PTX not newer than sm."""
    if cubins and str(sm) in cubins:
        import base64

        return base64.b64decode(cubins[str(sm)])
    fits = sorted((int(k) for k in (images or {}) if int(k) <= sm), reverse=True)
    if not fits:
        raise CudaError("%s has no kernel image for sm_%d (PTX for %s): recompile with `seqc compile --target torch` where nvcc builds for this GPU" % (what, sm, ", ".join("sm_" + k for k in sorted(images or {})) or "none"))
    return images[str(fits[0])]


def _io_is(f, io, out_io=None):
    """Whether form plan f takes `io` inputs and `out_io` outputs (None: `io`); a form's outputs are of its `out`, else its `io`."""
    fio = f.get("io", "f32")
    return fio == io and f.get("out", fio) == (out_io or io)


class PlanRunner:
    """Runs the forms of one CUDA plan on one device. real='f64' for plans whose kernels are double (lowerCudaF64)."""

    def __init__(self, plan, ordinal, real="f32", drv=None):
        self.plan = plan
        self.ordinal = ordinal
        self.real = real
        self.esize = 8 if real == "f64" else 4
        self.drv = drv or driver()
        self.drv.use(ordinal)
        self.info = self.drv.info(ordinal)
        self._modules = {}
        self._fns = {}
        self._picks = {}
        self._launches = {}
        self._occupancy = {}

    def env(self, dims, B, T):
        i = self.info
        smem = i["smem_optin"] // (2 if self.real == "f64" else 1)
        env = dict(dims)
        env.update(B=B, T=T, LIMIT_SMS=i["multiprocessors"], LIMIT_SMEM_OPTIN=smem, LIMIT_SHARED=smem, LIMIT_THREADS=i["max_threads"])
        return env

    def applicable(self, dims, B, T, choice="auto", io="f32", out_io=None):
        """Forms that can run (dims, B, T) with inputs of element type `io` ("f32", or "bf16" / "f16": the chunked
        form's 2-byte variants, params and states fp32) and outputs of `out_io` (None: `io`; "f32" with io "bf16": the
        mixed-I/O variants, runtime/cuda/plan.ts CudaFormPlan.out), in plan order, each with its environment."""
        out = []
        for f in self.plan["forms"]:
            if choice != "auto" and choice != f["form"] and choice != f["variant"]:
                continue
            if not _io_is(f, io, out_io) and choice != f["variant"]:
                continue
            env = self.env(dims, B, T)
            for k, e in f["vars"]:
                env[k] = eval_size(e, env)
            if "applicable" in f and f["applicable"] is not None and eval_size(f["applicable"], env) == 0:
                continue
            out.append((f, env))
        return out

    def has_io(self, io, out_io=None):
        """Whether the plan has forms taking `io` inputs and `out_io` (None: `io`) outputs (runtime/cuda/plan.ts CudaFormPlan.io, .out)."""
        return any(_io_is(f, io, out_io) for f in self.plan["forms"])

    def can_run(self, dims, B, T, choice="auto", io="f32", out_io=None):
        """Whether some `io` form applies at (dims, B, T); cached as pick is (applicable is pure Python over every form)."""
        key = ("can", tuple(sorted(dims.items())), B, T, choice, io, out_io)
        hit = self._picks.get(key)
        if hit is None:
            hit = self._picks[key] = self.has_io(io, out_io) and bool(self.applicable(dims, B, T, choice, io, out_io))
        return hit

    def pick(self, dims, B, T, choice="auto", io="f32", out_io=None):
        """The first applicable preferred form in plan order (runtime/cuda/runner.ts pick), and its environment.

        Cached per (dims, B, T, choice): the plan and the device do not change, and evaluating every form's
        vars is pure Python (a chunked plan has ~30 forms: 0.6-1.7 ms a call, more than a chunked core's GPU
        time at B=8 T=2048 H=16 K=V=64). The returned env is shared: callers read it only."""
        key = (tuple(sorted(dims.items())), B, T, choice, io, out_io)
        hit = self._picks.get(key)
        if hit is None:
            hit = self._pick_uncached(dims, B, T, choice, io, out_io)
            self._picks[key] = hit
        return hit

    def _pick_uncached(self, dims, B, T, choice="auto", io="f32", out_io=None):
        every = self.applicable(dims, B, T, choice, io, out_io)
        preferred = [(f, e) for f, e in every if f.get("prefer") is None or eval_size(f["prefer"], e) != 0]
        cands = preferred or every
        if not cands:
            tag = ("" if io == "f32" else " " + io) + ("" if out_io in (None, io) else " (%s outputs)" % out_io)
            raise CudaError("%s: no %s%s form can run B=%d, T=%d on %s" % (self.plan["model"], choice, tag, B, T, self.info["name"]))
        return cands[0]

    def _module(self, key):
        if key not in self._modules:
            self.drv.use(self.ordinal)
            if key is None:
                image = _image_for(self.plan.get("ptx"), None, self.info["sm"], self.plan["model"])
            else:
                m = self.plan["modules"][key]
                image = _image_for(m.get("ptx"), m.get("cubin"), self.info["sm"], "%s module %s" % (self.plan["model"], key))
            self._modules[key] = self.drv.load_module(image)
        return self._modules[key]

    def _fn(self, key, entry):
        k = (key, entry)
        if k not in self._fns:
            self._fns[k] = [self.drv.function(self._module(key), entry), 0]
        return self._fns[k]

    def run(self, form, env, B, T, buffers, has, init, state_offsets, alloc, zero, stream):
        """Enqueue one form on `stream`.

        buffers: "params", "states", "initialStates", "input:<name>", "output:<name>" -> device pointer (int);
        "states" must hold a copy of "initialStates" (kernels read initial values from the latter and
        write final values to the former, so no thread's write races another's first read).
        has: names of given optional inputs/params; init: states given an initial value.
        alloc(nbytes) -> device pointer of a zeroed-or-not scratch allocation kept alive by the caller;
        zero(ptr, nbytes) clears it on `stream`.
        """
        self.drv.use(self.ordinal)
        ws = {}
        for w in form["workspaces"]:
            n = max(4, eval_size(w["words"], env) * self.esize)
            ws[w["name"]] = (alloc(n), n)

        def ptr(ref):
            k = ref["kind"]
            if k == "params":
                return buffers["params"]
            if k == "states":
                return buffers["states"]
            if k == "initialStates":  # read-only initial values, apart from the states written (runner.ts)
                return buffers.get("initialStates", buffers["states"])
            if k == "workspace":
                return ws[ref["name"]][0]
            key = "%s:%s" % (k, ref["name"])
            if key not in buffers:
                raise CudaError("no buffer %s" % key)
            return buffers[key]

        uniforms = {}
        for f in self.plan["uniforms"]:
            if f == "B":
                v = B
            elif f == "T":
                v = T
            elif f.startswith("has_"):
                v = 1 if f[4:] in has else 0
            elif f.startswith("init_"):
                v = 1 if f[5:] in init else 0
            elif f.startswith("SO_"):
                v = state_offsets.get(f[3:], 0)
            else:
                v = env.get(f, 0)
            uniforms[f] = v
        key = form.get("module")
        for step in form["steps"]:
            kind = step["kind"]
            if kind == "zero":
                p, n = ws[step["workspace"]]
                zero(p, n)
                continue
            if kind == "gemm":
                M, N, K = (eval_size(step[x], env) for x in ("M", "N", "K"))
                off = eval_size(step["bOffset"], env) if step.get("bOffset") is not None else 0
                fn = self._fn(key, step["entry"])[0]
                args = [("ptr", ptr(step["a"])), ("ptr", ptr(step["b"]) + off * self.esize), ("ptr", ptr(step["c"])), ("u32", M), ("u32", N), ("u32", K), ("u32", K), ("u32", K), ("u32", N)]
                self.drv.launch(fn, step["entry"], (-(-N // 128), -(-M // 128)), 256, 0, stream, args)
                continue
            grid = eval_size(step["grid"], env)
            if grid == 0:
                continue
            threads = eval_size(step["threads"], env)
            if grid * threads > 2 ** 32 - 1:  # 32-bit thread indices would wrap and compute garbage
                raise CudaError("%s: kernel %s needs %d threads at B=%d, T=%d, more than 32-bit indices reach (%d); use a smaller batch or smaller dims"
                                % (self.plan["model"], step["entry"], grid * threads, env["B"], env["T"], 2 ** 32 - 1))
            shared = eval_size(step["sharedBytes"], env) * (2 if self.real == "f64" else 1)
            slot = self._fn(key, step["entry"])
            fn = slot[0]
            if shared > 48 * 1024 and shared > slot[1]:
                self.drv.set_max_dynamic_shared(fn, shared)
                slot[1] = shared
            coop = bool(step.get("cooperative"))
            if coop:  # (cached: the occupancy query is not a stream operation, and none is wanted inside a CUDA graph capture)
                ok = (key, step["entry"], threads, shared)
                if ok not in self._occupancy:
                    self._occupancy[ok] = self.drv.max_active_blocks(fn, threads, shared)
                fit = self._occupancy[ok] * self.info["multiprocessors"]
                if grid > fit:
                    raise CudaError("%s: %d cooperative blocks do not fit on %s (%d at once)" % (step["entry"], grid, self.info["name"], fit))
            args = [("ptr", ptr(b)) for b in step["buffers"]]
            args.append(("struct", [uniforms.get(n, 0) for n in step["uniforms"]]))
            args.append(("struct", [eval_size(e, env) for e in step["overrides"].values()]))
            gy = -(-grid // _INT_MAX)
            self.drv.launch(fn, step["entry"], (-(-grid // gy), gy), threads, shared, stream, args, coop)


# ---------------------------------------------------------------------------------------------
# a model-independent kernel module (<Model>.torch.json "kernels": compiler/backends/torch/chain-plans.ts)


class KernelModule:
    """The kernels of one module of <Model>.torch.json "kernels" (e.g. "rowsReadout": compiler/backends/cuda/rows-readout.ts)
    on one device: loaded once, launched by entry name with explicit grids and arguments (the glue that uses them
    computes both: seqc_chunked.rows_readout_kernel)."""

    def __init__(self, spec, name, ordinal, drv=None):
        self.spec = spec
        self.name = name
        self.ordinal = ordinal
        self.drv = drv or driver()
        self.drv.use(ordinal)
        self.info = self.drv.info(ordinal)
        self.kernels = spec["kernels"]
        self._module = None
        self._fns = {}

    def launch(self, kernel, grid, args, stream):
        """kernel: an entry of spec["kernels"] ({entry, threads, sharedBytes, ...}); grid (gx, gy); args as Driver.launch takes them."""
        self.drv.use(self.ordinal)
        if self._module is None:
            self._module = self.drv.load_module(_image_for(self.spec.get("ptx"), self.spec.get("cubin"), self.info["sm"], "kernel module %s" % self.name))
        entry, shared = kernel["entry"], kernel["sharedBytes"]
        slot = self._fns.get(entry)
        if slot is None:
            slot = self._fns[entry] = [self.drv.function(self._module, entry), 0]
        if shared > 48 * 1024 and shared > slot[1]:
            self.drv.set_max_dynamic_shared(slot[0], shared)
            slot[1] = shared
        self.drv.launch(slot[0], entry, grid, kernel["threads"], shared, stream, args)
