//===- FuseKvAppend.cpp - the attention copies a KV cache's past in -------===//
//
// See the pass's description in Passes.td. Runs on buffers, after
// transfuse-cpu-stream-large-copies; the runtime's side is
// transfuse_attention_f32_past in runtime/src/attention.cpp.
//
//===----------------------------------------------------------------------===//
#include "codegen/cpu/BufferAliasing.h"
#include "codegen/cpu/LoweringUtils.h"
#include "codegen/cpu/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include <optional>

namespace transfuse::cpu {
#define GEN_PASS_DEF_FUSEKVAPPEND
#include "codegen/cpu/Passes.h.inc"
} // namespace transfuse::cpu

using namespace mlir;

namespace {

constexpr llvm::StringLiteral kAttention = "transfuse_attention_f32";
constexpr llvm::StringLiteral kAttentionPast = "transfuse_attention_f32_past";
constexpr llvm::StringLiteral kCopy = "transfuse_copy_f32";
// transfuse_attention_f32's operands (LowerFused.cpp): Q, K, V, two masks,
// O, then the mask count, the scale, the softcap and the flags.
constexpr unsigned kK = 1, kV = 2, kO = 5, kMemrefs = 6, kScalars = 4;

/// `v` through memref.cast ops.
Value throughCasts(Value v) {
  while (auto cast = v.getDefiningOp<memref::CastOp>())
    v = cast.getSource();
  return v;
}

/// The source and target of a copy, ranked: a memref.copy, or a call of
/// the runtime's transfuse_copy_f32 on unranked casts (StreamLargeCopies).
std::optional<std::pair<Value, Value>> copyOf(Operation *op) {
  if (auto copy = dyn_cast<memref::CopyOp>(op))
    return std::make_pair(copy.getSource(), copy.getTarget());
  auto call = dyn_cast<func::CallOp>(op);
  if (!call || call.getCallee() != kCopy || call.getNumOperands() != 2)
    return std::nullopt;
  Value src = throughCasts(call.getOperand(0)),
        dst = throughCasts(call.getOperand(1));
  if (!isa<MemRefType>(src.getType()) || !isa<MemRefType>(dst.getType()))
    return std::nullopt;
  return std::make_pair(src, dst);
}

/// Size `d` of the buffer `alloc` allocates.
OpFoldResult allocSize(memref::AllocOp alloc, int64_t d) {
  MemRefType t = alloc.getType();
  if (!t.isDynamicDim(d))
    return IntegerAttr::get(IndexType::get(alloc.getContext()),
                            t.getDimSize(d));
  return alloc.getDynamicSizes()[t.getDynamicDimIndex(d)];
}

/// Where a copy into the rank-4 buffer `x` writes, when its target `v` is
/// a subview of x (through casts) with unit strides: rows [offset, offset
/// + size) along dim 2 (the keys), and whether it covers every element of
/// the other dims; nullopt for any other target.
struct KeyRows {
  OpFoldResult offset, size;
  bool whole;
};
std::optional<KeyRows> keyRowsOf(Value v, memref::AllocOp x) {
  auto view = throughCasts(v).getDefiningOp<memref::SubViewOp>();
  if (!view || throughCasts(view.getSource()) != x.getResult() ||
      view.getType().getRank() != 4 || !view.hasUnitStride())
    return std::nullopt;
  SmallVector<OpFoldResult> offsets = view.getMixedOffsets(),
                            sizes = view.getMixedSizes();
  bool whole =
      llvm::all_of(std::initializer_list<int64_t>{0, 1, 3}, [&](int64_t d) {
        return isConstantIntValue(offsets[d], 0) &&
               isEqualConstantIntOrValue(sizes[d], allocSize(x, d));
      });
  return KeyRows{offsets[2], sizes[2], whole};
}

/// The ops of `block` that may read or write the buffer `root`: the
/// block's ops holding a use of it or of a view of it (transitively), other
/// than the views themselves.
DenseSet<Operation *> opsTouching(Value root, Block *block) {
  DenseSet<Operation *> ops;
  SmallVector<Value> work{root};
  while (!work.empty()) {
    Value v = work.pop_back_val();
    for (OpOperand &use : v.getUses()) {
      Operation *user = use.getOwner();
      if (transfuse::cpu::viewedBuffer(user) == v) {
        for (Value r : user->getResults())
          work.push_back(r);
        continue;
      }
      if (Operation *op = block->findAncestorOpInBlock(*user))
        ops.insert(op);
    }
  }
  return ops;
}

/// The copy of a function argument (a KV cache's past) into rows [0, Sp)
/// of the buffer `operand` of `call` views, which `call` could make
/// itself: back from the call, the ops that touch that buffer are copies
/// into rows from Sp on (the new tokens') up to it. Null when there is
/// none.
Operation *pastCopyInto(func::CallOp call, unsigned operand) {
  auto x =
      throughCasts(call.getOperand(operand)).getDefiningOp<memref::AllocOp>();
  if (!x || x.getType().getRank() != 4 || !x.getType().getLayout().isIdentity())
    return nullptr;
  // The call reads the buffer through this operand only.
  for (unsigned i = 0; i < kMemrefs; ++i)
    if (i != operand &&
        transfuse::cpu::viewRoot(call.getOperand(i)) == x.getResult())
      return nullptr;
  DenseSet<Operation *> touching = opsTouching(x.getResult(), call->getBlock());
  SmallVector<OpFoldResult> laterRows;
  for (Operation *op = call->getPrevNode(); op; op = op->getPrevNode()) {
    if (!touching.contains(op))
      continue;
    auto copy = copyOf(op);
    auto rows = copy ? keyRowsOf(copy->second, x) : std::nullopt;
    if (!rows)
      return nullptr;
    if (!isConstantIntValue(rows->offset, 0)) {
      laterRows.push_back(rows->offset);
      continue;
    }
    // The past: every row [0, Sp) of every head, from a function argument
    // (never written: the pipeline marks them read-only); the later copies
    // all start at Sp or further.
    auto source = dyn_cast<MemRefType>(copy->first.getType());
    bool fromArgument = source && source.getRank() == 4 &&
                        source.getElementType().isF32() &&
                        transfuse::cpu::isViewOfArgument(copy->first);
    bool disjoint = llvm::all_of(laterRows, [&](OpFoldResult r) {
      return isEqualConstantIntOrValue(r, rows->size);
    });
    return rows->whole && fromArgument && disjoint ? op : nullptr;
  }
  return nullptr;
}

struct FuseKvAppendPass
    : transfuse::cpu::impl::FuseKvAppendBase<FuseKvAppendPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<func::CallOp> calls;
    module.walk([&](func::CallOp call) {
      if (call.getCallee() == kAttention &&
          call.getNumOperands() == kMemrefs + kScalars)
        calls.push_back(call);
    });
    MLIRContext *ctx = &getContext();
    OpBuilder top(ctx);
    for (func::CallOp call : calls) {
      Operation *copies[2] = {pastCopyInto(call, kK), pastCopyInto(call, kV)};
      if (!copies[0] && !copies[1])
        continue;
      OpBuilder b(call);
      Location loc = call.getLoc();
      auto type = cast<MemRefType>(call.getOperand(kO).getType());
      SmallVector<Value> args(call.getOperands().take_front(kMemrefs));
      for (Operation *copy : copies) {
        Value past;
        if (copy) {
          past = copyOf(copy)->first;
        } else {
          // None: an empty buffer (the runtime copies no rows).
          past = memref::AllocaOp::create(
              b, loc, MemRefType::get({0, 0, 0, 0}, Float32Type::get(ctx)));
        }
        args.push_back(memref::CastOp::create(b, loc, type, past));
      }
      llvm::append_range(args, call.getOperands().drop_front(kMemrefs));
      func::CallOp::create(
          b, loc,
          transfuse::cpu::declareRuntimeFunction(top, module, kAttentionPast,
                                                 ValueRange(args).getTypes()),
          args);
      call.erase();
      for (Operation *copy : copies) {
        if (!copy)
          continue;
        // The copy, and the casts and views only it used.
        SmallVector<Value> dead(copy->getOperands());
        copy->erase();
        while (!dead.empty()) {
          Operation *def = dead.pop_back_val().getDefiningOp();
          if (!def || !def->use_empty() || !isMemoryEffectFree(def))
            continue;
          llvm::append_range(dead, def->getOperands());
          def->erase();
        }
      }
    }
  }
};

} // namespace
