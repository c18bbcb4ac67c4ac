//===- ParallelizeLoops.cpp - outermost scf.parallel on the thread pool ---===//
//
// Each outermost scf.parallel loop becomes a call of the runtime's
// transfuse_parallel_loop with an outlined body; see the pass description
// in Passes.td for the contract.
//
//===----------------------------------------------------------------------===//
#include "codegen/cpu/LoweringUtils.h"
#include "codegen/cpu/Passes.h"

#include "mlir/Conversion/LLVMCommon/TypeConverter.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Transforms/RegionUtils.h"

namespace transfuse::cpu {
#define GEN_PASS_DEF_PARALLELIZELOOPS
#include "codegen/cpu/Passes.h.inc"
} // namespace transfuse::cpu

using namespace mlir;

namespace {

constexpr llvm::StringLiteral kParallelLoopFunc = "transfuse_parallel_loop";
/// Trip count assumed for a nested loop whose bounds are not constants.
constexpr int64_t kDynamicTrip = 16;

/// Static trip count of [lb, ub) by step, or kDynamicTrip.
int64_t tripCount(Value lb, Value ub, Value step) {
  std::optional<int64_t> l = getConstantIntValue(lb),
                         u = getConstantIntValue(ub),
                         s = getConstantIntValue(step);
  if (!l || !u || !s || *s <= 0)
    return kDynamicTrip;
  return std::max<int64_t>(0, (*u - *l + *s - 1) / *s);
}

/// Ops one iteration of `block` runs: nested loops count their trip count
/// times their body, an scf.if its larger branch.
int64_t costOf(Block &block) {
  int64_t cost = 0;
  for (Operation &op : block) {
    if (auto loop = dyn_cast<scf::ForOp>(op)) {
      cost += tripCount(loop.getLowerBound(), loop.getUpperBound(),
                        loop.getStep()) *
              costOf(*loop.getBody());
    } else if (auto loop = dyn_cast<scf::ParallelOp>(op)) {
      int64_t trips = 1;
      for (auto [l, u, s] : llvm::zip(loop.getLowerBound(),
                                      loop.getUpperBound(), loop.getStep()))
        trips *= tripCount(l, u, s);
      cost += trips * costOf(*loop.getBody());
    } else if (op.getNumRegions() > 0) {
      int64_t most = 0;
      for (Region &r : op.getRegions())
        for (Block &b : r)
          most = std::max(most, costOf(b));
      cost += 1 + most;
    } else {
      cost += 1;
    }
  }
  return std::max<int64_t>(cost, 1);
}

bool callsFail(scf::ParallelOp loop) {
  return loop
      .walk([](func::CallOp call) {
        return call.getCallee() == transfuse::cpu::kFailFunc
                   ? WalkResult::interrupt()
                   : WalkResult::advance();
      })
      .wasInterrupted();
}

struct ParallelizeLoopsPass
    : transfuse::cpu::impl::ParallelizeLoopsBase<ParallelizeLoopsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<scf::ParallelOp> loops;
    module.walk([&](scf::ParallelOp loop) {
      if (!loop->getParentOfType<scf::ParallelOp>() &&
          loop.getNumResults() == 0 && loop.getInitVals().empty() &&
          !callsFail(loop))
        loops.push_back(loop);
    });
    if (loops.empty())
      return;
    MLIRContext *ctx = &getContext();
    LLVMTypeConverter converter(ctx);
    SymbolTable symbols(module);
    Type ptr = LLVM::LLVMPointerType::get(ctx);
    Type i64 = IntegerType::get(ctx, 64);
    auto bodyType = FunctionType::get(ctx, {ptr, i64, i64}, {});
    if (!symbols.lookup(kParallelLoopFunc)) {
      OpBuilder b = OpBuilder::atBlockBegin(module.getBody());
      auto decl = func::FuncOp::create(
          b, module.getLoc(), kParallelLoopFunc,
          FunctionType::get(ctx, {i64, i64, bodyType, ptr}, {}));
      decl.setPrivate();
      symbols.insert(decl);
    }
    for (scf::ParallelOp loop : loops)
      outline(loop, converter, symbols, bodyType);
  }

  void outline(scf::ParallelOp loop, LLVMTypeConverter &converter,
               SymbolTable &symbols, FunctionType bodyType) {
    MLIRContext *ctx = &getContext();
    Location loc = loop.getLoc();
    Type ptr = LLVM::LLVMPointerType::get(ctx);
    Type i64 = IntegerType::get(ctx, 64);
    auto parent = loop->getParentOfType<func::FuncOp>();
    if (!parent)
      return;

    // What the body needs from outside: the loop's bounds and the values its
    // ops use. Constants are cloned; everything else travels in ctx.
    llvm::SetVector<Value> used;
    getUsedValuesDefinedAbove(loop.getRegion(), used);
    used.insert_range(loop.getLowerBound());
    used.insert_range(loop.getUpperBound());
    used.insert_range(loop.getStep());
    SmallVector<Value> constants, fields;
    SmallVector<Type> fieldTypes;
    for (Value v : used) {
      Operation *def = v.getDefiningOp();
      if (def && def->getNumOperands() == 0 &&
          def->hasTrait<OpTrait::ConstantLike>()) {
        constants.push_back(v);
        continue;
      }
      Type t = v.getType();
      Type stored;
      if (isa<MemRefType>(t))
        stored = converter.convertType(t);
      else if (t.isIndex())
        stored = i64;
      else if (LLVM::isCompatibleType(t))
        stored = t;
      if (!stored)
        return; // a value we cannot pass: the loop stays sequential
      fields.push_back(v);
      fieldTypes.push_back(stored);
    }
    auto ctxType = LLVM::LLVMStructType::getLiteral(ctx, fieldTypes);

    // The body: func(ctx, lo, hi) runs outer iterations [lo, hi).
    OpBuilder mb = OpBuilder::atBlockEnd(
        parent->getParentOfType<ModuleOp>().getBody());
    auto body = func::FuncOp::create(
        mb, loc, (parent.getSymName() + "_loop").str(), bodyType);
    body.setPrivate();
    body->setAttr("llvm.linkage",
                  LLVM::LinkageAttr::get(ctx, LLVM::Linkage::Internal));
    symbols.insert(body); // uniques the name
    Block *entry = body.addEntryBlock();
    OpBuilder b = OpBuilder::atBlockBegin(entry);
    IRMapping map;
    for (Value c : constants)
      map.map(c, b.clone(*c.getDefiningOp())->getResult(0));
    Value ctxArg = entry->getArgument(0);
    for (auto [i, v] : llvm::enumerate(fields)) {
      Value slot = LLVM::GEPOp::create(
          b, loc, ptr, ctxType, ctxArg,
          ArrayRef<LLVM::GEPArg>{0, static_cast<int32_t>(i)});
      Value loaded = LLVM::LoadOp::create(b, loc, fieldTypes[i], slot);
      if (isa<MemRefType>(v.getType()))
        loaded = UnrealizedConversionCastOp::create(b, loc, v.getType(), loaded)
                     .getResult(0);
      else if (v.getType().isIndex())
        loaded = arith::IndexCastOp::create(b, loc, v.getType(), loaded);
      map.map(v, loaded);
    }
    auto mapped = [&](ValueRange vs) {
      return llvm::map_to_vector(vs, [&](Value v) { return map.lookup(v); });
    };
    SmallVector<Value> lbs = mapped(loop.getLowerBound()),
                       ubs = mapped(loop.getUpperBound()),
                       steps = mapped(loop.getStep());
    // The last dim stays a sequential loop inside for LLVM to vectorize,
    // unless the body holds its own loop (a reduction): then every dim is
    // split, as a row reduction's rows may all lie in its last parallel dim.
    size_t rank = lbs.size();
    bool nested = llvm::any_of(loop.getBody()->getOperations(),
                               [](Operation &op) {
                                 return isa<LoopLikeOpInterface>(op);
                               });
    size_t outerDims = rank == 1 || nested ? rank : rank - 1;
    auto trips = [&](OpBuilder &ob, ArrayRef<Value> l, ArrayRef<Value> u,
                     ArrayRef<Value> s, size_t d) -> Value {
      return arith::CeilDivUIOp::create(
          ob, loc, arith::SubIOp::create(ob, loc, u[d], l[d]), s[d]);
    };
    Value c1 = arith::ConstantIndexOp::create(b, loc, 1);
    auto toIndex = [&](Value v) {
      return arith::IndexCastOp::create(b, loc, b.getIndexType(), v);
    };
    SmallVector<Value> outerTrips;
    for (size_t d = 0; d < outerDims; ++d)
      outerTrips.push_back(trips(b, lbs, ubs, steps, d));
    auto outer = scf::ForOp::create(b, loc, toIndex(entry->getArgument(1)),
                                    toIndex(entry->getArgument(2)), c1);
    b.setInsertionPointToStart(outer.getBody());
    // Outer iteration l, delinearized (the last outer dim varies fastest).
    Value rest = outer.getInductionVar();
    SmallVector<Value> ivs(rank);
    for (size_t d = outerDims; d-- > 0;) {
      Value at = rest;
      if (d > 0) {
        at = arith::RemUIOp::create(b, loc, rest, outerTrips[d]);
        rest = arith::DivUIOp::create(b, loc, rest, outerTrips[d]);
      }
      ivs[d] = arith::AddIOp::create(
          b, loc, lbs[d], arith::MulIOp::create(b, loc, at, steps[d]));
    }
    if (outerDims < rank) {
      auto inner = scf::ForOp::create(b, loc, lbs[rank - 1], ubs[rank - 1],
                                      steps[rank - 1]);
      ivs[rank - 1] = inner.getInductionVar();
      b.setInsertionPointToStart(inner.getBody());
    }
    for (auto [old, iv] : llvm::zip(loop.getInductionVars(), ivs))
      map.map(old, iv);
    for (Operation &op : loop.getBody()->without_terminator())
      b.clone(op, map);
    b.setInsertionPointToEnd(entry);
    func::ReturnOp::create(b, loc);

    // The call site: fill ctx (one stack slot per loop, in the entry block)
    // and hand the loop to the runtime.
    OpBuilder pb = OpBuilder::atBlockBegin(&parent.getBody().front());
    Value one = LLVM::ConstantOp::create(pb, loc, i64, 1);
    Value ctxPtr = LLVM::AllocaOp::create(pb, loc, ptr, ctxType, one);
    pb.setInsertionPoint(loop);
    for (auto [i, v] : llvm::enumerate(fields)) {
      Value stored = v;
      if (isa<MemRefType>(v.getType()))
        stored = UnrealizedConversionCastOp::create(pb, loc, fieldTypes[i], v)
                     .getResult(0);
      else if (v.getType().isIndex())
        stored = arith::IndexCastOp::create(pb, loc, i64, v);
      Value slot = LLVM::GEPOp::create(
          pb, loc, ptr, ctxType, ctxPtr,
          ArrayRef<LLVM::GEPArg>{0, static_cast<int32_t>(i)});
      LLVM::StoreOp::create(pb, loc, stored, slot);
    }
    SmallVector<Value> lbs0(loop.getLowerBound()), ubs0(loop.getUpperBound()),
        steps0(loop.getStep());
    Value n = arith::ConstantIndexOp::create(pb, loc, 1);
    for (size_t d = 0; d < outerDims; ++d)
      n = arith::MulIOp::create(pb, loc, n, trips(pb, lbs0, ubs0, steps0, d));
    Value work = arith::MulIOp::create(
        pb, loc, n,
        arith::ConstantIndexOp::create(pb, loc, costOf(*loop.getBody())));
    if (outerDims < rank)
      work = arith::MulIOp::create(pb, loc, work,
                                   trips(pb, lbs0, ubs0, steps0, rank - 1));
    Value fn = func::ConstantOp::create(pb, loc, bodyType,
                                        SymbolRefAttr::get(body));
    func::CallOp::create(
        pb, loc, kParallelLoopFunc, TypeRange{},
        ValueRange{arith::IndexCastOp::create(pb, loc, i64, n),
                   arith::IndexCastOp::create(pb, loc, i64, work), fn,
                   ctxPtr});
    loop.erase();
  }
};

} // namespace
