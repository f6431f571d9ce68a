// `python_eval`: a restricted expression evaluator. The expression is parsed with
// Python's `ast` in a separate, isolated interpreter (python3 -I -S) under tight rlimits;
// only an allow-list of node types passes (literals, arithmetic, comparisons, boolean
// logic, conditional expressions, subscripts, comprehensions) and calls only to a
// short list of pure builtins. No attribute access, no names but comprehension
// variables and those builtins, no statements: imports, dunder walks (__subclasses__)
// and file access are refused before anything runs. range() is bounded; memory and
// CPU are capped by rlimits, so a runaway allocation or computation ends failed or
// timeout. Opt-in (--allow python_eval).
#include <csignal>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "worker/handlers/opt_in_handlers.h"
#include "worker/payload.h"
#include "worker/process/task_process.h"

namespace rc::worker {
namespace {

constexpr char kEvaluator[] = R"PY(
import ast, json, sys

MAX_RANGE = 10_000_000
MAX_POW_EXPONENT = 100_000

def bounded_range(*args):
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise ValueError("range longer than %d" % MAX_RANGE)
    return r

def safe_pow(base, exp, mod=None):
    if isinstance(exp, int) and abs(exp) > MAX_POW_EXPONENT and mod is None:
        raise ValueError("exponent larger than %d" % MAX_POW_EXPONENT)
    return pow(base, exp, mod) if mod is not None else pow(base, exp)

BUILTINS = {
    "abs": abs, "all": all, "any": any, "bool": bool, "chr": chr, "dict": dict, "divmod": divmod,
    "enumerate": enumerate, "float": float, "hex": hex, "int": int, "len": len, "list": list,
    "max": max, "min": min, "oct": oct, "ord": ord, "pow": safe_pow, "range": bounded_range,
    "reversed": reversed, "round": round, "set": set, "sorted": sorted, "str": str, "sum": sum,
    "tuple": tuple, "zip": zip, "bin": bin, "True": True, "False": False, "None": None,
}

ALLOWED = (
    ast.Expression, ast.Constant, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp,
    ast.List, ast.Tuple, ast.Set, ast.Dict, ast.ListComp, ast.SetComp, ast.DictComp,
    ast.GeneratorExp, ast.comprehension, ast.Name, ast.Call, ast.Subscript, ast.Slice,
    ast.Load, ast.Store,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow,
    ast.UAdd, ast.USub, ast.Not, ast.Invert, ast.And, ast.Or,
    ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
)

class Refused(Exception):
    pass

def check(tree):
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.comprehension):
            for n in ast.walk(node.target):
                if isinstance(n, ast.Name):
                    bound.add(n.id)
    for node in ast.walk(tree):
        if not isinstance(node, ALLOWED):
            raise Refused("%s is not allowed" % type(node).__name__)
        if isinstance(node, ast.Name):
            if node.id.startswith("_") or (node.id not in BUILTINS and node.id not in bound):
                raise Refused("name '%s' is not allowed" % node.id)
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise Refused("%s is not allowed" % type(node.func).__name__)
            if node.func.id not in BUILTINS or node.func.id.startswith("_"):
                raise Refused("name '%s' is not allowed" % node.func.id)
            if any(k.arg is None for k in node.keywords) or any(isinstance(a, ast.Starred) for a in node.args):
                raise Refused("argument unpacking is not allowed")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            raise Refused("use pow(a, b) instead of a ** b")
        if isinstance(node, ast.Constant) and isinstance(node.value, bytes):
            raise Refused("bytes literals are not allowed")

def to_json(v):
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return repr(v)
    if isinstance(v, bool) or v is None or isinstance(v, (float, str)):
        return v
    if isinstance(v, int):
        return v if -2**63 <= v < 2**63 else str(v)
    if isinstance(v, (list, tuple)):
        return [to_json(x) for x in v]
    if isinstance(v, (set, frozenset)):
        return sorted((to_json(x) for x in v), key=repr)
    if isinstance(v, dict):
        return {str(k): to_json(x) for k, x in v.items()}
    if isinstance(v, (range, reversed, enumerate, zip)):
        return [to_json(x) for x in v]
    return repr(v)

def main():
    expression = sys.stdin.read()
    try:
        tree = ast.parse(expression, mode="eval")
        check(tree)
        value = eval(compile(tree, "<expression>", "eval"), {"__builtins__": BUILTINS}, {})
        print(json.dumps({"value": to_json(value)}))
    except Refused as e:
        print(json.dumps({"error": "refused: %s" % e}))
        sys.exit(1)
    except SyntaxError as e:
        print(json.dumps({"error": "syntax error: %s" % e.msg}))
        sys.exit(1)
    except MemoryError:
        print(json.dumps({"error": "out of memory"}))
        sys.exit(1)
    except Exception as e:
        print(json.dumps({"error": "%s: %s" % (type(e).__name__, e)}))
        sys.exit(1)

main()
)PY";

constexpr size_t kMaxExpression = 10000;

class PythonEvalHandler final : public Handler {
 public:
  explicit PythonEvalHandler(ExecutionOptions options) : options_(std::move(options)) {
    // Tighter than the worker's limits: an expression needs little.
    options_.limits.address_space_bytes = std::min<uint64_t>(
        options_.limits.address_space_bytes == 0 ? UINT64_MAX : options_.limits.address_space_bytes, 512ULL << 20);
    options_.limits.cpu_seconds = options_.limits.cpu_seconds == 0 ? 10 : std::min<uint64_t>(options_.limits.cpu_seconds, 10);
    options_.limits.file_size_bytes = 1 << 20;
    options_.limits.open_files = 64;
  }

  absl::StatusOr<HandlerOutput> Run(const TaskContext& ctx) override {
    ASSIGN_OR_RETURN(Payload p, Payload::Parse(ctx.payload));
    ASSIGN_OR_RETURN(std::optional<std::string> expression, p.String("expression"));
    if (!expression.has_value() || expression->empty()) {
      return absl::InvalidArgumentError("payload.expression: required, a Python expression");
    }
    if (expression->size() > kMaxExpression) {
      return absl::InvalidArgumentError(absl::StrCat("payload.expression: longer than ", kMaxExpression, " characters"));
    }
    std::string python = FindProgram("python3", "/usr/bin:/usr/local/bin:/bin");
    if (python.empty()) return absl::FailedPreconditionError("python3 is not installed on this worker");
    ASSIGN_OR_RETURN(TaskDir dir, TaskDir::Create(options_.work_root, ctx.task_id, ctx.attempt));
    ProcessSpec spec;
    spec.argv = {python, "-I", "-S", "-c", kEvaluator};
    spec.env = TaskEnvironment(options_, dir.path());
    spec.cwd = dir.path();
    spec.stdin_data = *expression;
    spec.limits = options_.limits;
    spec.output_cap = options_.output_cap;
    ASSIGN_OR_RETURN(ProcessResult r, RunContained(std::move(spec), {dir.path(), {}}, ctx, options_));
    HandlerOutput out = FromProcess(r, options_.output_cap);
    out.stdout.clear();
    nlohmann::json answer = nlohmann::json::parse(r.stdout, nullptr, false);
    if (!answer.is_discarded() && answer.contains("value")) {
      out.result = nlohmann::json{{"value", answer["value"]}}.dump();
      out.failure = absl::OkStatus();
    } else if (!answer.is_discarded() && answer.contains("error")) {
      out.failure = absl::InvalidArgumentError(answer["error"].get<std::string>());
    } else if (r.signal == SIGXCPU || r.signal == SIGKILL || r.exit_code == 128 + SIGXCPU ||
               r.exit_code == 128 + SIGKILL) {  // bwrap reports a signal death as 128 + signal
      out.failure = absl::ResourceExhaustedError("expression used up its CPU time limit");
    } else if (out.failure.ok()) {
      out.failure = absl::InternalError(absl::StrCat("evaluator gave no answer: ", r.stderr));
    }
    return out;
  }

 private:
  ExecutionOptions options_;
};

}  // namespace

std::unique_ptr<Handler> MakePythonEvalHandler(const ExecutionOptions& options) {
  return std::make_unique<PythonEvalHandler>(options);
}

}  // namespace rc::worker
