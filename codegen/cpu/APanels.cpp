//===- APanels.cpp - producers write a product's A panels -----------------===//
//
// See the pass's description in Passes.td. Runs on buffers, after
// transfuse-cpu-matmul-to-microkernel has turned products into calls of
// the runtime; the runtime's side is in gemm.cpp
// (transfuse_linear_f32_panels), gemm_bf16.cpp
// (transfuse_linear_bf16_panels) and norms.cpp (transfuse_norm_f32_panels),
// the layouts in runtime/include/transfuse/f32_panels.h and bf16_panels.h.
//
//===----------------------------------------------------------------------===//
#include "codegen/cpu/BufferAliasing.h"
#include "codegen/cpu/LoweringUtils.h"
#include "codegen/cpu/Passes.h"

#include "transfuse/bf16_panels.h"
#include "transfuse/f32_panels.h"
#include "transfuse/linear_flags.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "llvm/ADT/MapVector.h"

namespace transfuse::cpu {
#define GEN_PASS_DEF_APANELS
#include "codegen/cpu/Passes.h.inc"
} // namespace transfuse::cpu

using namespace mlir;

namespace {

constexpr llvm::StringLiteral kNorm = "transfuse_norm_f32";
constexpr llvm::StringLiteral kNormPanels = "transfuse_norm_f32_panels";
// Operands of the calls (MatmulToMicrokernel.cpp, LowerFused.cpp).
constexpr unsigned kLinearA = 0, kLinearC = 2, kLinearResidual = 4,
                   kLinearFlags = 5, kNormY = 4, kNormSum = 5, kNormFlags = 7;
// The norm's flag bit for its sum output, which it may leave unwritten
// (norms.cpp); the linear's are in transfuse/linear_flags.h.
constexpr int64_t kNormWritesSum = 4;
using transfuse::linear::kHasResidual;
using transfuse::linear::kPanelsIn;
using transfuse::linear::kPanelsOnly;
using transfuse::linear::kPanelsOut;

bool isCallOf(Operation *op, StringRef callee) {
  auto call = dyn_cast<func::CallOp>(op);
  return call && call.getCallee() == callee;
}

/// The products whose A can come as panels, and their panels' layout.
struct Kind {
  StringRef linear, linearPanels;
  bool bf16;
  int64_t panelRows;
  int64_t paddedK(int64_t k) const {
    return bf16 ? transfuse::bf16::paddedK(k) : k;
  }
  /// Elements of the panels of `rows` rows of K = k.
  int64_t size(int64_t rows, int64_t k) const {
    return bf16 ? transfuse::bf16::aPanelsSize(rows, k)
                : transfuse::f32::aPanelsSize(rows, k);
  }
  Type element(MLIRContext *ctx) const {
    return bf16 ? Type(BFloat16Type::get(ctx)) : Type(Float32Type::get(ctx));
  }
};
const Kind kBf16{"transfuse_linear_bf16_packed", "transfuse_linear_bf16_panels",
                 true, transfuse::bf16::kPanelRows},
    kF32{"transfuse_linear_f32_packed", "transfuse_linear_f32_panels", false,
         transfuse::f32::kPanelRows};

/// The kind of product `op` is, when transfuse_linear_*_panels can stand
/// for it: a linear with constant flags (MatmulToMicrokernel makes every
/// bf16 product that writes C afresh one; an f32 one is a linear when it
/// has an epilogue). Its A is operand 0, its C operand 2.
const Kind *productKind(Operation *op) {
  auto call = dyn_cast<func::CallOp>(op);
  for (const Kind *kind : {&kBf16, &kF32})
    if (call && call.getCallee() == kind->linear)
      return matchPattern(op->getOperand(kLinearFlags), m_Constant()) ? kind
                                                                      : nullptr;
  return nullptr;
}

/// Whether `view` (a cast, collapse_shape, expand_shape or reshape of its
/// first operand) keeps the last dim whole, so that the rows of an
/// identity-layout source (all dims but the last, row-major) are its rows.
bool keepsRows(Operation *view) {
  if (isa<memref::CastOp>(view))
    return true;
  if (auto c = dyn_cast<memref::CollapseShapeOp>(view))
    return c.getReassociationIndices().back().size() == 1;
  if (auto e = dyn_cast<memref::ExpandShapeOp>(view))
    return e.getReassociationIndices().back().size() == 1;
  if (auto r = dyn_cast<memref::ReshapeOp>(view)) {
    int64_t from = r.getSource().getType().getShape().back(),
            to = r.getType().getShape().back();
    return !ShapedType::isDynamic(from) && from == to;
  }
  return false;
}

/// The identity-layout buffer with a static last dim whose rows are `v`'s
/// rows, through views that keep them; null when there is none.
memref::AllocOp rowsRoot(Value v) {
  while (Operation *def = v.getDefiningOp()) {
    if (auto alloc = dyn_cast<memref::AllocOp>(def)) {
      MemRefType t = alloc.getType();
      bool ok = t.getLayout().isIdentity() && t.getRank() >= 1 &&
                !ShapedType::isDynamic(t.getShape().back());
      return ok ? alloc : memref::AllocOp();
    }
    if (!keepsRows(def))
      return {};
    v = def->getOperand(0);
  }
  return {};
}

/// The uses of a buffer that may touch its data: through any view of it
/// (transitively), each with whether its view keeps the buffer's rows.
/// Terminators count (a buffer returned or yielded is read elsewhere).
struct Accesses {
  SmallVector<std::pair<OpOperand *, bool>> uses;
  explicit Accesses(Value root) {
    SmallVector<std::pair<Value, bool>> work{{root, true}};
    while (!work.empty()) {
      auto [v, rows] = work.pop_back_val();
      for (OpOperand &use : v.getUses()) {
        Operation *user = use.getOwner();
        bool source = use.getOperandNumber() == 0;
        if (source && isa<memref::CastOp, memref::CollapseShapeOp,
                          memref::ExpandShapeOp, memref::ReshapeOp>(user)) {
          work.push_back({user->getResult(0), rows && keepsRows(user)});
        } else if (transfuse::cpu::viewedBuffer(user) == v) {
          for (Value r : user->getResults())
            work.push_back({r, false});
        } else if (!isMemoryEffectFree(user) ||
                   user->hasTrait<OpTrait::IsTerminator>()) {
          uses.push_back({&use, rows});
        }
      }
    }
  }
};

/// The operand numbers of `op`'s uses among `uses` (all with rows kept
/// when `rows`).
SmallVector<unsigned> operandsUsing(ArrayRef<std::pair<OpOperand *, bool>> uses,
                                    bool &rows) {
  SmallVector<unsigned> numbers;
  rows = true;
  for (auto [use, r] : uses) {
    numbers.push_back(use->getOperandNumber());
    rows &= r;
  }
  return numbers;
}

/// Whether a call with the buffer's uses `uses` reads it only as its A: a
/// product of `kind`, which can take the panels.
bool readsAsA(Operation *op, ArrayRef<std::pair<OpOperand *, bool>> uses,
              const Kind *kind) {
  bool rows;
  SmallVector<unsigned> numbers = operandsUsing(uses, rows);
  return productKind(op) == kind && rows &&
         llvm::all_of(numbers, [](unsigned n) { return n == kLinearA; });
}

/// Whether a call with the buffer's uses `uses` writes all of it as its
/// output, rows kept, and does not otherwise read or write it, and can
/// write `kind`'s panels: the norm kernel's Y (bf16 panels only), a
/// linear's C of that kind. The operand its flags say it does not read
/// (the norm's sum output, the linear's residual), which the lowerings
/// fill with the output, does not count.
bool writesAll(Operation *op, ArrayRef<std::pair<OpOperand *, bool>> uses,
               const Kind *kind) {
  bool rows;
  SmallVector<unsigned> numbers = operandsUsing(uses, rows);
  auto only = [&](unsigned out, unsigned flagsAt, unsigned unread,
                  int64_t readBit) {
    APInt flags;
    if (!matchPattern(op->getOperand(flagsAt), m_ConstantInt(&flags)))
      return false;
    bool ignored = !(flags.getSExtValue() & readBit);
    return rows && llvm::is_contained(numbers, out) &&
           llvm::all_of(numbers, [&](unsigned n) {
             return n == out || (n == unread && ignored);
           });
  };
  if (isCallOf(op, kNorm) && kind->bf16)
    return only(kNormY, kNormFlags, kNormSum, kNormWritesSum);
  if (productKind(op) == kind)
    return only(kLinearC, kLinearFlags, kLinearResidual, kHasResidual);
  return false;
}

/// A producer's buffer and the kind of panels it writes.
struct Produced {
  memref::AllocOp buffer;
  const Kind *kind;
};

struct APanelsPass : transfuse::cpu::impl::APanelsBase<APanelsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    // Producer -> its buffer; product -> its producer.
    llvm::MapVector<Operation *, Produced> producers;
    llvm::MapVector<Operation *, Operation *> products;
    DenseMap<Operation *, std::unique_ptr<Accesses>> accessesOf;
    module.walk([&](func::CallOp call) {
      const Kind *kind = productKind(call);
      if (!kind)
        return;
      memref::AllocOp buffer = rowsRoot(call.getOperand(kLinearA));
      if (!buffer)
        return;
      auto &acc = accessesOf[buffer];
      if (!acc)
        acc = std::make_unique<Accesses>(buffer.getResult());
      // The buffer's uses by each op of the product's block (nested ones
      // count for the op that holds them); uses outside the block do not
      // run between two of its ops.
      Block *block = call->getBlock();
      DenseMap<Operation *, SmallVector<std::pair<OpOperand *, bool>>> byOp;
      for (auto use : acc->uses)
        if (Operation *op =
                block->findAncestorOpInBlock(*use.first->getOwner()))
          byOp[op].push_back(use);
      for (Operation *op = call->getPrevNode(); op; op = op->getPrevNode()) {
        auto it = byOp.find(op);
        if (it == byOp.end() || readsAsA(op, it->second, kind))
          continue;
        if (writesAll(op, it->second, kind)) {
          producers.insert({op, {buffer, kind}});
          products.insert({call, op});
        }
        return;
      }
    });
    if (products.empty())
      return;
    // Products whose output nothing reads but the products of their
    // panels: they need not write it (flags | 4096).
    DenseSet<Operation *> panelsOnly;
    for (auto &entry : producers) {
      Operation *op = entry.first;
      bool only =
          productKind(op) &&
          llvm::all_of(accessesOf[entry.second.buffer]->uses, [&](auto use) {
            Operation *user = use.first->getOwner();
            auto it = products.find(user);
            return user == op || (it != products.end() && it->second == op &&
                                  use.first->getOperandNumber() == kLinearA);
          });
      if (only)
        panelsOnly.insert(op);
    }
    rewrite(module, producers, products, panelsOnly);
  }

  void rewrite(ModuleOp module,
               llvm::MapVector<Operation *, Produced> &producers,
               llvm::MapVector<Operation *, Operation *> &products,
               const DenseSet<Operation *> &panelsOnly) {
    MLIRContext *ctx = &getContext();
    auto panelsType = [&](const Kind *kind) {
      return MemRefType::get({ShapedType::kDynamic}, kind->element(ctx));
    };
    // Each producer's panels, allocated right before it.
    DenseMap<Operation *, Value> panels;
    for (auto [op, produced] : producers) {
      auto [buffer, kind] = produced;
      OpBuilder b(op);
      Location loc = op->getLoc();
      MemRefType t = buffer.getType();
      int64_t k = t.getShape().back();
      auto c = [&](int64_t v) {
        return arith::ConstantIndexOp::create(b, loc, v).getResult();
      };
      Value alloc;
      auto align = b.getI64IntegerAttr(64);
      if (llvm::none_of(t.getShape().drop_back(), ShapedType::isDynamic)) {
        int64_t rows = 1;
        for (int64_t d : t.getShape().drop_back())
          rows *= d;
        auto type = MemRefType::get({kind->size(rows, k)}, kind->element(ctx));
        alloc = memref::AllocOp::create(b, loc, type, ValueRange{}, align);
      } else {
        // ceil(rows / R) * R * Kp, as aPanelsSize (R rows a panel).
        int64_t staticRows = 1;
        Value rowsValue;
        for (int64_t d = 0; d + 1 < t.getRank(); ++d) {
          if (!t.isDynamicDim(d)) {
            staticRows *= t.getDimSize(d);
            continue;
          }
          Value dim = memref::DimOp::create(b, loc, buffer, d);
          rowsValue =
              rowsValue ? arith::MulIOp::create(b, loc, rowsValue, dim) : dim;
        }
        if (staticRows != 1)
          rowsValue = arith::MulIOp::create(b, loc, rowsValue, c(staticRows));
        int64_t panelRows = kind->panelRows;
        Value whole = arith::DivUIOp::create(
            b, loc, arith::AddIOp::create(b, loc, rowsValue, c(panelRows - 1)),
            c(panelRows));
        Value size = arith::MulIOp::create(b, loc, whole,
                                           c(panelRows * kind->paddedK(k)));
        alloc = memref::AllocOp::create(b, loc, panelsType(kind),
                                        ValueRange{size}, align);
      }
      panels[op] =
          alloc.getType() == panelsType(kind)
              ? alloc
              : memref::CastOp::create(b, loc, panelsType(kind), alloc);
    }
    OpBuilder top(ctx);
    auto declare = [&](StringRef name, ValueRange operands) {
      return transfuse::cpu::declareRuntimeFunction(top, module, name,
                                                    operands.getTypes());
    };
    // Every call that takes or writes panels, once.
    llvm::SetVector<Operation *> calls;
    for (auto [op, produced] : producers)
      calls.insert(op);
    for (auto [op, producer] : products)
      calls.insert(op);
    for (Operation *op : calls) {
      auto call = cast<func::CallOp>(op);
      OpBuilder b(call);
      Location loc = call.getLoc();
      Value out = panels.lookup(op);
      SmallVector<Value> args(call.getOperands());
      if (call.getCallee() == kNorm) {
        args.push_back(out);
        func::CallOp::create(b, loc, declare(kNormPanels, args), args);
        call.erase();
        continue;
      }
      const Kind *kind = productKind(call);
      auto none = [&]() -> Value {
        Value empty = memref::AllocaOp::create(
            b, loc, MemRefType::get({0}, kind->element(ctx)));
        return memref::CastOp::create(b, loc, panelsType(kind), empty);
      };
      auto product = products.find(op);
      Value in =
          product != products.end() ? panels.lookup(product->second) : Value();
      APInt flags;
      matchPattern(call.getOperand(kLinearFlags), m_ConstantInt(&flags));
      int64_t bits = flags.getSExtValue() | (in ? kPanelsIn : 0) |
                     (out ? kPanelsOut : 0) |
                     (panelsOnly.contains(op) ? kPanelsOnly : 0);
      args[kLinearFlags] = arith::ConstantIntOp::create(b, loc, bits, 64);
      args.insert(args.begin() + kLinearA + 1, in ? in : none());
      args.push_back(out ? out : none());
      func::CallOp::create(b, loc, declare(kind->linearPanels, args), args);
      call.erase();
    }
  }
};

} // namespace
