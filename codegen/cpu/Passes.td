#ifndef TRANSFUSE_CPU_PASSES
#define TRANSFUSE_CPU_PASSES

include "mlir/Pass/PassBase.td"

def OutlineKernels : Pass<"transfuse-cpu-outline-kernels", "mlir::ModuleOp"> {
  let summary = "One private function per distinct fused kernel (attention, norms, rotary)";
  let description = [{
    Runs first in the CPU pipeline, on transformer ops. Each `attention`,
    `layer_norm`, `rms_norm` and `rotary_embedding` op becomes a call to a
    private function holding that op alone, and ops that are the same (name,
    attributes, operand and result types) share one function. A model's
    layers are alike, so each kernel's loops are generated and compiled by
    LLVM once instead of once per layer (`noinline` keeps LLVM from pasting
    them back). One-shot bufferization handles the calls. Products (`linear`)
    stay inline: their constant weights are packed at compile time where the
    product meets them.

    A run-time check inside a shared function names the node of the first
    op that used it.

    With `norm-kernel` (as transfuse-cpu-lower-to-linalg's), the norms that
    the runtime's norm kernel will take (codegen/cpu/RuntimeKernels.h) stay
    inline: their lowering is a call of the runtime already, and inline
    their output buffer is visible to transfuse-cpu-a-panels. With
    `attention-kernel`, so do the attentions the runtime's attention kernel
    takes: inline, its operands can be strided views (a function argument
    is an identity-layout buffer, so each view was copied at the call).
  }];
  let options = [
    Option<"normKernel", "norm-kernel", "bool", /*default=*/"false",
           "leave the norms the runtime's norm kernel takes inline">,
    Option<"attentionKernel", "attention-kernel", "bool", /*default=*/"false",
           "leave the attentions the runtime's attention kernel takes inline">
  ];
  let dependentDialects = ["mlir::func::FuncDialect",
                           "mlir::LLVM::LLVMDialect"];
}

def LowerToLinalg : Pass<"transfuse-cpu-lower-to-linalg", "mlir::ModuleOp"> {
  let summary = "Lower transformer graph ops to linalg, tensor, arith and math";
  let description = [{
    Rewrites every `transformer` graph op into destination-passing linalg on
    tensors. Broadcasting uses indexing maps wherever the types prove a dim is
    1 or equal; a dim that is dynamic on two sides is broadcast at run time
    (select index 0 when the run-time size is 1), so a dynamic batch or
    sequence dim is never assumed. Shape operands (reshape, expand, slice,
    constant_of_shape) are read at run time with ONNX's rules (0 copies a
    dim, -1 is inferred, starts/ends are clamped). First, on the graph ops,
    a reshape that compile time proves keeps its input's dims
    (`classifyReshape` in dialects/transformer/ShapeInference.h: each target
    entry a constant equal to the dim, or read from the shape of a tensor
    whose dim has the same origin) goes when it is the identity, and becomes
    a `tensor.expand_shape` (a view after bufferization) when it only splits
    the last dim: the heads of a slice of a merged QKV projection.

    With `attention-kernel`, an f32 `transformer.attention` with at most two
    masks becomes one call to the runtime's fused attention,
    `transfuse_attention_f32`, on read-only buffers of its operands
    (`bufferization.to_buffer`; a (0, 2, 1, 3) transpose of a tensor as a
    transposed view of that tensor's buffer) and a fresh result buffer
    (`bufferization.to_tensor restrict`; where the result's only reader is
    its transpose back to [B, S, H, D], that transpose's buffer, written
    through a transposed view, replaces it); otherwise, and for other element
    types or more masks, it becomes generated loops (LowerFused.cpp). With
    `bf16-attention` too (`transfuse compile --precision bf16`, unless
    `--bf16-attention=false`), the call's flags ask the kernel to round both
    operands of its two products to bf16 (the runtime's bf16 GEMM). With
    `norm-kernel`, an f32 `layer_norm` or `rms_norm` of rank at most 4 with
    1-D scale and bias becomes one call of `transfuse_norm_f32` the same way
    (tensors padded to rank 4; a residual's broadcast checked at run time).

    Fails, naming the op, when a transformer op is left (a fused op without a
    lowering, or an element type the lowering does not handle).
  }];
  let options = [
    Option<"attentionKernel", "attention-kernel", "bool", /*default=*/"false",
           "f32 attention with at most two masks: call the runtime's fused "
           "kernel instead of generating loops">,
    Option<"bf16Attention", "bf16-attention", "bool", /*default=*/"false",
           "with attention-kernel: the kernel's two products on bf16 "
           "operands (flags bit 0)">,
    Option<"normKernel", "norm-kernel", "bool", /*default=*/"false",
           "f32 layer_norm and rms_norm of rank at most 4: call the "
           "runtime's norm kernel instead of generating loops">
  ];
  let dependentDialects = [
    "mlir::linalg::LinalgDialect", "mlir::tensor::TensorDialect",
    "mlir::arith::ArithDialect", "mlir::math::MathDialect",
    "mlir::scf::SCFDialect", "mlir::bufferization::BufferizationDialect",
    "mlir::memref::MemRefDialect", "mlir::func::FuncDialect"
  ];
}

def MatmulToMicrokernel : Pass<"transfuse-cpu-matmul-to-microkernel",
                               "mlir::ModuleOp"> {
  let summary = "Call the runtime's GEMM microkernel for f32 linalg.matmul";
  let description = [{
    Runs after bufferization. Rewrites each f32 `linalg.matmul` on buffers
    (a product by a matrix, see buildMatMul in LowerToLinalg.cpp) into a
    call to
    `transfuse_matmul_f32(A, B, C, accumulate)`, C = A * B (+ C when
    `accumulate` is 1) on strided 2-D memrefs,
    declared `llvm.emit_c_interface` so that it links against
    `_mlir_ciface_transfuse_matmul_f32` in the runtime (runtime/src/gemm.cpp;
    packed, register-blocked, AVX-512 where the CPU has it). When B is a
    constant global (a weight), it is packed here, at compile time, into the
    kernel's panel layout [ceil(N / 32)][K][32] and
    `transfuse_matmul_f32_packed` is called instead; the unpacked global is
    dropped once nothing reads it.
    A matmul with B transposed (`linalg.matmul` with the transpose-B
    indexing maps: attention's Q K^T) passes B as a `memref.transpose` view,
    so K is never copied into K^T; the runtime reads that view's contiguous
    columns directly when A has few rows (a decode step) and packs from it
    otherwise. Matmuls with other indexing maps or other element types are
    left to the loop lowering.

    With `precision=bf16` (`transfuse compile --precision bf16`), a constant
    weight is packed instead as bf16 into the AMX tile layout of
    runtime/include/transfuse/bf16_panels.h ([ceil(N / 32)][Kp][32], K zero
    padded to a multiple of 32, rounded to nearest even) and
    `transfuse_matmul_bf16_packed` is called (runtime/src/gemm_bf16.cpp):
    A is rounded to bf16 as it is packed, products accumulate in f32, C
    stays f32. Products whose B is not a constant stay f32 (attention's
    are bf16 under `--precision bf16` unless `--bf16-attention=false`,
    inside the runtime's fused attention: transfuse-cpu-lower-to-linalg).

    A `linalg.fill` of +0 into C right before the product (how a `linear`
    starts its result) is dropped, and the call passes accumulate = 0 so
    that the kernel writes C without reading it; otherwise accumulate = 1.

    A `linear`'s epilogue goes into the call too: when such a
    product's C (a fresh buffer) is read by nothing but one elementwise
    `linalg.generic` (seen through reshapes) whose body is act(C + bias) +
    residual as LowerLinear writes it (act: none, relu, gelu, gelu_tanh or
    silu; the bias read along the last dim, the residual with the identity
    map and layout), whose output is a fresh identity-layout buffer, and
    nothing between the two writes memory, the pair becomes one call of
    `transfuse_linear_f32_packed(A, packed B, out, bias, residual, flags)`
    (`transfuse_linear_bf16_packed` with bf16 weights; flags: the
    activation, | 256 with a bias, | 512 with a residual). The runtime
    applies the epilogue to each tile of C right after its last K slice,
    while the tile is in L1 (runtime/src/epilogue.cpp). Any other reader,
    body, output or op in between leaves the pass as it is. With bf16
    weights, a product that writes C afresh without such an epilogue is a
    `transfuse_linear_bf16_packed` too (flags 0, an empty bias, C as the
    unread residual), so that transfuse-cpu-a-panels sees one entry.

    In f32 (and with `int4`, the default), a constant weight whose every
    column is, in each block of 32 rows, a 4-bit code times a scale less a
    zero point, to the bit (the f32 weight the importer dequantizes from a
    com.microsoft MatMulNBits), is stored so instead
    (runtime/include/transfuse/q4_panels.h: 0.64 bytes a weight), and
    its product, with an epilogue as above or without, is one call of
    `transfuse_linear_q4(A, codes, params, out, bias, residual, flags,
    accumulate)`. The runtime dequantizes the codes to the same floats and
    sums in the same order, so the results are those of the f32 weight; a
    decode step reads a quarter of its bytes. transfuse-cpu-a-panels
    leaves these calls as they are. Any other weight stays f32.
  }];
  let options = [
    Option<"precision", "precision", "std::string", /*default=*/"\"f32\"",
           "f32, or bf16 (constant weights as bf16 on AMX tiles)">,
    Option<"int4", "int4", "bool", /*default=*/"true",
           "in f32, keep weights that are 4-bit codes times scales so">,
  ];
  let dependentDialects = ["mlir::arith::ArithDialect",
                           "mlir::func::FuncDialect",
                           "mlir::memref::MemRefDialect"];
}

def APanels : Pass<"transfuse-cpu-a-panels", "mlir::ModuleOp"> {
  let summary = "Products by a weight read A as panels that its producer "
                "wrote";
  let description = [{
    Runs right after transfuse-cpu-matmul-to-microkernel, on buffers. A
    product by a weight first packs its A into the panels its kernels
    read: rounded into AMX tile panels for bf16 (a pass over A, 5-8% of
    bert-base bf16's time), in panels of 12 rows for f32 (the FFN-down
    product's A, [rows, 3072] on t5-base, 6 MiB read and written again).
    The products here are the calls of the linear entry points:
      - bf16: `transfuse_linear_bf16_packed`, every bf16 product by a
        weight that writes C afresh (a plain one has flags 0, see
        transfuse-cpu-matmul-to-microkernel);
      - f32: `transfuse_linear_f32_packed`, an f32 product by a weight
        with an epilogue (a plain one stays
        `transfuse_matmul_f32_packed`, left as it is).
    A product that accumulates into C (`transfuse_matmul_bf16_packed`) is
    left as it is. When a product's A is the output of another product of
    its kind, or for bf16 of the runtime's norm kernel
    (`transfuse_norm_f32`), that producer writes the panels instead, as
    each block of C (product) or row (norm) leaves it, and the product
    reads them:
      - the producer becomes `transfuse_linear_{f32,bf16}_panels(A, -, B,
        C, bias, residual, flags | 2048, P)` or
        `transfuse_norm_f32_panels(..., P)`, P a fresh `memref<?xf32>`
        (f32_panels.h's layout) or `memref<?xbf16>` (bf16_panels.h's) for
        its output's rows;
      - each product reading that output becomes
        `transfuse_linear_{f32,bf16}_panels(A, P, B, C, bias, residual,
        flags | 1024, -)` (a product can be both);
      - a producing product whose output nothing else reads (the FFN-up
        product, read only by FFN-down) writes only the panels
        (flags | 4096).
    The output is still written where other ops read it (and where the
    runtime does not use panels: decode steps' few rows, a CPU without
    the kernels that read them), so results do not change.

    A product qualifies when its A reaches a `memref.alloc` with the
    identity layout through `memref.cast`, `memref.collapse_shape` and
    `memref.expand_shape` that keep the last dim whole, and `memref.reshape`
    with equal static last dims: then A's row i is the buffer's row i (all
    dims but the last, row-major). The producer is the last op before the
    product, in the same block, that uses the buffer (through such views)
    at all other than as another such product's A, and it must be a
    producer above of the product's kind writing the whole buffer as its
    output. Anything else (another view, another writer or reader in
    between, a producer in another block or of the other kind) leaves the
    product as it is.
  }];
  let dependentDialects = ["mlir::arith::ArithDialect",
                           "mlir::func::FuncDialect",
                           "mlir::memref::MemRefDialect"];
}

def FuseElementwise : Pass<"transfuse-cpu-fuse-elementwise",
                            "mlir::func::FuncOp"> {
  let summary = "Fuse elementwise linalg.generic ops, without recomputing "
                "costly producers";
  let description = [{
    Upstream's `linalg-fuse-elementwise-ops` (elementwise fusion, reshape
    folding by expansion, the same canonicalizations), except that a
    producer is not fused into a consumer that reads each of its elements
    at several iteration points (a broadcast: the consumer's indexing map
    for it is not a permutation of the consumer's loops) when the
    producer's body computes a transcendental function (a math op other
    than abs, fma, copysign, rounding and bit counts) or a division. The
    fused loop would compute it once per consumer point: T5's relative
    position buckets (a log per query-key pair) were recomputed for every
    head, 12 times on t5-base. Paired runs on a Xeon at two threads:
    t5-base encoder 73.0 -> 70.3 ms (f32), 21.4 -> 20.4 ms (bf16);
    bert-base bf16 20.8 -> 20.1 ms, f32 level.
  }];
  let dependentDialects = ["mlir::linalg::LinalgDialect",
                           "mlir::affine::AffineDialect",
                           "mlir::tensor::TensorDialect"];
}

def CheckRefinedCasts : Pass<"transfuse-cpu-check-refined-casts",
                              "mlir::ModuleOp"> {
  let summary = "Check at run time each size a cast takes as static";
  let description = [{
    Runs on tensors, after the last canonicalization before bufferization.
    Linalg's canonicalization infers static sizes from an op's other
    operands (InferStaticShapeOfOperands) and gives its producers a
    `tensor.cast` from a dynamic size to that static one, assuming the
    sizes agree. A malformed model breaks that assumption only at run time:
    a transpose feeding a product whose K is static then ran over the
    static size, past its input's rows, before the product's own check
    (found by test/fuzz/mutate_models.py: a Gemm with transA set on a
    dynamic batch). Before each such cast in a function's body, this pass
    inserts a run-time check (`__transfuse_fail`, naming the cast's ONNX
    node) that the dynamic size is the static one. Casts inside loops are
    left alone: a check there would keep the loop from going parallel. A
    module pass: each check adds its message to the module's list.
  }];
  let dependentDialects = ["mlir::arith::ArithDialect",
                           "mlir::scf::SCFDialect",
                           "mlir::func::FuncDialect",
                           "mlir::tensor::TensorDialect"];
}

def SplitEmptyTensors : Pass<"transfuse-cpu-split-empty-tensors"> {
  let summary = "Give each use of a shared tensor.empty its own copy";
  let description = [{
    Runs right before one-shot bufferization. CSE merges the `tensor.empty`
    ops of equal static shape, so one empty tensor can be the destination of
    an op in every layer. Bufferization then writes each layer's result into
    the same buffer, which stays live from the first layer to the last and
    keeps the buffer plan (`transfuse-cpu-plan-buffers`) from sharing its
    bytes with anything: bert-base at 128 tokens needed a 8.3 MiB arena
    instead of about 3. Each use after the first gets a copy of the op, made
    just before its user, so each destination becomes a buffer of its own
    with a short life.
  }];
  let dependentDialects = ["mlir::tensor::TensorDialect"];
}

def EarlyDealloc : Pass<"transfuse-cpu-early-dealloc"> {
  let summary = "Free each owned buffer after its last use, not at the block's end";
  let description = [{
    Runs between `ownership-based-buffer-deallocation` (with its
    simplification) and `bufferization-lower-deallocations`. Ownership-based
    deallocation frees every buffer in one `bufferization.dealloc` at the
    end of the block that allocated it, so a model's `main_graph` held every
    activation of every layer until it returned (bert-base at 128 tokens:
    158 MiB of scratch). This pass takes out of that dealloc each buffer that
    is
      - a `memref.alloc` of the same block, owned unconditionally,
      - never returned, yielded or passed to an op this pass does not know
        (views, casts and `extract_strided_metadata` are followed; a call
        counts as a use when its callee's results are not views of its
        arguments),
      - not among the dealloc's retained values,
    and frees it with `memref.dealloc` right after the op (in that block)
    holding its last use, or a use of one of its views. Anything else stays
    with the end-of-block dealloc.
  }];
  let dependentDialects = ["mlir::memref::MemRefDialect",
                           "mlir::bufferization::BufferizationDialect"];
}

def PlanBuffers : Pass<"transfuse-cpu-plan-buffers", "mlir::ModuleOp"> {
  let summary = "Place buffers of static size in one arena per function call";
  let description = [{
    Runs after `bufferization-lower-deallocations` (and
    `transfuse-cpu-early-dealloc`), when every buffer a function owns
    outright is a `memref.alloc` freed by one unconditional `memref.dealloc`.
    In each function of one block, it plans each `memref.alloc` of the entry
    block that
      - has a static shape, the identity layout, an integer, float or index
        element type and a nonzero size, and asks for at most 64-byte
        alignment;
      - is freed by exactly one `memref.dealloc`, in the entry block.
    Such a buffer is live from its alloc to its dealloc, and nothing may
    touch it outside that span. Buffers are placed largest first, each at
    the lowest 64-byte-aligned offset that overlaps no placed buffer whose
    span overlaps its own. The function then allocates one `i8` arena at
    entry and frees it before returning; each planned alloc becomes a
    `memref.view` of the arena at its offset, and its dealloc goes.

    Buffers of run-time size, buffers freed conditionally or not at all
    (outputs), and allocs inside loops or branches (an `scf.forall` body may
    run on several threads at once) stay with the runtime's allocator.

    Each planned function gets `transfuse.arena_bytes`. The module gets
    `transfuse.memory_plan = [peak, planned, unplanned]`: `peak` is
    `@main_graph`'s arena plus, at most, the largest peak among the functions
    it calls (callees run one at a time); `planned` and `unplanned` count the
    allocs of all functions placed in arenas and left to the allocator.
  }];
  let dependentDialects = ["mlir::arith::ArithDialect",
                           "mlir::memref::MemRefDialect"];
}

def ApproximateMath : Pass<"transfuse-cpu-approximate-math"> {
  let summary = "Polynomial f32 erf, exp and tanh, so that their loops vectorize";
  let description = [{
    Replaces f32 `math.erf`, `math.exp` and `math.tanh` with MLIR's
    polynomial approximations (arith only). A libm call per element keeps
    LLVM from vectorizing the loop around it (GELU's erf was 6% of
    bert-base's time). Accuracy is checked where it matters: ONNX's node
    tests (Erf, Exp, Tanh, Gelu, Softmax, ...) and the model tests against
    ONNX Runtime pass with their usual tolerances. Other element types, and
    other math ops, are left to libm.
  }];
  let dependentDialects = ["mlir::arith::ArithDialect",
                           "mlir::vector::VectorDialect"];
}

def StreamLargeCopies : Pass<"transfuse-cpu-stream-large-copies",
                             "mlir::ModuleOp"> {
  let summary = "Hand large f32 copies to the runtime, which streams them";
  let description = [{
    Runs after bufferization and buffer deallocation, before
    `transfuse-cpu-copy-to-linalg`. A `memref.copy` of f32 whose last dim
    is contiguous on both sides, whose size is dynamic or at least 256 KiB,
    and whose target may outlive the function (`mayOutlive` in
    BufferAliasing.h: a view of an argument or a call's result, or of an
    allocation that is returned or yielded), becomes a call of the runtime's `transfuse_copy_f32` on the
    two memrefs cast to unranked (a declaration with
    `llvm.emit_c_interface` is added once). The runtime merges dims that
    are contiguous on both sides into long rows; from 256 KiB at run time
    it splits them over the thread pool and writes them with non-temporal
    stores, which skip reading the destination into the cache first;
    smaller copies are one `memcpy` per row. This is for a KV cache's
    concatenation: a GPT-2 decode step at a 1023-token past copies 75 MB
    (it was a quarter of the step at one thread); the past's copy then
    usually goes into the attention kernel
    (`transfuse-cpu-fuse-kv-append`). A copy into a buffer the
    function reads again and frees stays: streamed, that read would come
    from DRAM (bert-base's Q, K and V, copied out of the merged
    projection, 393 KiB each: bf16 bert-base 44.5 -> 38.7 ms at one thread
    on a Xeon, GPT-2 decode unchanged). So do other copies (other element
    types, strided rows, static sizes under 256 KiB); all are left to
    `transfuse-cpu-copy-to-linalg`.
  }];
  let dependentDialects = ["mlir::func::FuncDialect",
                           "mlir::memref::MemRefDialect"];
}

def FuseKvAppend : Pass<"transfuse-cpu-fuse-kv-append", "mlir::ModuleOp"> {
  let summary = "The attention kernel copies a KV cache's past rows in itself";
  let description = [{
    Runs after `transfuse-cpu-stream-large-copies`, on buffers. A decode
    step's attention reads K = concat(past, new) (the same for V), which is
    also the step's `present` output: bufferized, a buffer X that a copy
    of the past (a function argument) fills at rows [0, Sp) of the key dim,
    and a copy of the new tokens at rows from Sp on, before the call of
    the runtime's `transfuse_attention_f32` reads it. The past's copy
    streamed it to DRAM (`transfuse_copy_f32`'s non-temporal stores),
    from where the attention read it again.

    When, walking back from the attention call, the only ops that touch X
    are copies into rows starting at the past copy's end, and then the
    past copy itself (a `memref.copy` or a `transfuse_copy_f32` call into a
    subview of X at offset 0 that covers every element of the other dims,
    from a view of a function argument), the past copy is erased and the
    call becomes `transfuse_attention_f32_past` with the past as two more
    operands (K's, then V's; an empty 0x0x0x0 buffer where only one of
    them qualifies). The runtime copies each head's past rows right before
    the task that reads them, with plain stores, so the attention reads
    them from L1 or L2. X is left as the copies would have left it.

    Nothing changes when the attention reads X through another operand
    too, when another op reads or writes X in between, when the past's
    subview is strided, partial or not at offset 0, or when its source is
    not a function argument.
  }];
  let dependentDialects = ["mlir::func::FuncDialect",
                           "mlir::memref::MemRefDialect"];
}

def PromoteReductions : Pass<"transfuse-cpu-promote-reductions"> {
  let summary = "Carry a reduction loop's accumulator in the loop, not in memory";
  let description = [{
    Runs right after `convert-linalg-to-parallel-loops`. That lowering
    turns a linalg reduction into an `scf.for` whose body loads the
    accumulator from the output, combines it with the inputs and stores it
    back, at every iteration. Once the loop is outlined into a parallel-loop
    body, LLVM cannot prove that the output and the inputs do not overlap,
    so the load and the store stay and every element waits for the last
    one's store (attention's row max and row sum over a dynamic number of
    keys, for example). For an `scf.for` whose body has no regions and
    touches memory only through `memref.load` and `memref.store`, a store
    to a buffer defined outside the loop, at indices defined outside it,
    whose only other access in the loop is one load at the same indices
    before it, becomes an iter_arg: one load before the loop, one store
    after. It relies on what linalg guarantees of the ops it came from: a
    reduction's output does not overlap its inputs. Loops with other
    accesses to the buffer, varying indices, calls or nested regions are
    left as they are.
  }];
  let dependentDialects = ["mlir::scf::SCFDialect",
                           "mlir::memref::MemRefDialect"];
}

def CopyToLinalg : Pass<"transfuse-cpu-copy-to-linalg"> {
  let summary = "Copy buffers with linalg.copy, so that copies become parallel loops";
  let description = [{
    Runs after bufferization and buffer deallocation, before
    `convert-linalg-to-parallel-loops`. Each ranked `memref.copy` becomes a
    `linalg.copy` of the same operands: its loops then take part in
    `transfuse-cpu-parallelize-loops`, where a `memref.copy` would be one
    `memcpy` or a `memrefCopy` call on the calling thread (a KV cache's
    concatenation copies megabytes per decode step). LLVM turns the
    innermost contiguous loop back into `memcpy` or vector moves.
  }];
  let dependentDialects = ["mlir::linalg::LinalgDialect"];
}

def ParallelizeLoops : Pass<"transfuse-cpu-parallelize-loops", "mlir::ModuleOp"> {
  let summary = "Run each outermost scf.parallel loop on the runtime's thread pool";
  let description = [{
    Runs after `convert-linalg-to-parallel-loops`, on buffers. Each
    outermost `scf.parallel` without results or init values becomes a call
    of the runtime's `transfuse_parallel_loop(n, work, body, ctx)`:
      - its dims but the last are linearized into `n` outer iterations,
        which the runtime splits into chunks; all its dims are, when it
        has one dim or its body holds a loop (a reduction, whose rows may
        all lie in the last parallel dim);
      - its body moves into a private function `body(ctx, lo, hi)` that
        runs outer iterations [lo, hi), each over the whole last dim as a
        sequential loop (left for LLVM to vectorize) where that dim is not
        split;
      - the values it uses from outside are stored in a stack struct `ctx`:
        memrefs as their LLVM descriptors, index as i64, scalars as they
        are; constants are cloned into the body instead;
      - `work` is `n` times a static cost of the body (times the inner
        dim's trip count where one stays inside; nested loops count their
        constant trip count, or 16 when it is dynamic); the runtime runs
        the loop inline below a grain.
    A loop whose body calls `__transfuse_fail` (a failed check unwinds the
    calling thread), or captures a value of another type, stays sequential.
    Which chunk computes what never changes a result: the outer iterations
    are independent, and a reduction stays inside one iteration.
  }];
  let dependentDialects = ["mlir::arith::ArithDialect",
                           "mlir::func::FuncDialect",
                           "mlir::LLVM::LLVMDialect",
                           "mlir::scf::SCFDialect"];
}

#endif
