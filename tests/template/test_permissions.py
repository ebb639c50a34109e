"""Each deployed function's IAM policy grants exactly what its code calls.

Three sources must agree, per deployed function:

- the code: every AWS SDK operation reachable from the function crate's `src/` (through the
  shared crates it depends on, e.g. `lambda_kit::storage` for S3 and `bedrock` for the model),
  mapped to IAM actions (`head_object` needs `s3:GetObject`, a read with a version id also
  `s3:GetObjectVersion`, a model call with a guardrail `bedrock:ApplyGuardrail`, ...). One
  binary may be deployed twice: buffered, and with `RESPONSE_STREAMING=true` (its function
  URL). Code that takes a stream's `Events` runs only in the streaming one, so what only that
  code reaches is granted to the streaming functions and never to the buffered ones;
- the function README's `| action | resources | why |` table under "IAM permissions", which
  says where each action applies (object prefixes, the bucket, the model, the guardrail); with
  a `function` column (`| action | resources | function | why |`) each row names the logical
  ids of the functions it grants to, without one a streaming function has the model rows;
- template.yaml: the function's `Policies`, evaluated with the parameters' values (defaults,
  then fallbacks, a guardrail and other destination Regions) into (action, ARN) pairs.

The one kind of grant no code calls is an event source mapping's poller (Lambda receives
and deletes the queue's messages with the function's role): its rows name the words
"event source queues" and must be exactly POLLER_ACTIONS, on exactly the SQS queues of the
function's `AWS::Lambda::EventSourceMapping`s (SAM `Type: SQS` events are refused: they
attach a managed policy that allows every queue). The SQS calls of the code itself
(`lambda_kit::sqs_retry` changes the visibility of the messages a batch answer lists) run only
while answering a batch from such a queue: only functions with event source queues need them,
on those queues.

A new SDK call without a table row, a row without a call, a grant the table does not list and
a listed grant the policy lacks all fail. Run by scripts/check-template.sh (needs cfn-lint from
the venv and the SDK crates' sources, which any cargo build fetches).
"""

import os
import pathlib
import re
import tempfile
import tomllib
import unittest

from cfnlint.decode import decode

ROOT = pathlib.Path(__file__).resolve().parents[2]

# SDK operation (Rust method name) -> IAM actions it needs. Operations missing here fail
# the test when the code calls them: add the action(s) the AWS docs name for the operation.
OPERATION_ACTIONS = {
    "aws-sdk-s3": {
        "get_object": {"s3:GetObject"},
        "head_object": {"s3:GetObject"},
        "put_object": {"s3:PutObject"},
        "delete_object": {"s3:DeleteObject"},
        "delete_objects": {"s3:DeleteObject"},
        "copy_object": {"s3:GetObject", "s3:PutObject"},
        "list_objects_v2": {"s3:ListBucket"},
        "list_objects": {"s3:ListBucket"},
        "list_object_versions": {"s3:ListBucketVersions"},
        "get_object_attributes": {"s3:GetObjectAttributes"},
        "get_object_tagging": {"s3:GetObjectTagging"},
        "put_object_tagging": {"s3:PutObjectTagging"},
    },
    "aws-sdk-bedrockruntime": {
        "invoke_model": {"bedrock:InvokeModel"},
        "invoke_model_with_response_stream": {"bedrock:InvokeModelWithResponseStream"},
        "converse": {"bedrock:InvokeModel"},
        "converse_stream": {"bedrock:InvokeModelWithResponseStream"},
        "apply_guardrail": {"bedrock:ApplyGuardrail"},
        "count_tokens": {"bedrock:CountTokens"},
    },
    "aws-sdk-dynamodb": {
        "get_item": {"dynamodb:GetItem"},
        "put_item": {"dynamodb:PutItem"},
        "update_item": {"dynamodb:UpdateItem"},
        "delete_item": {"dynamodb:DeleteItem"},
        "query": {"dynamodb:Query"},
        "scan": {"dynamodb:Scan"},
        "batch_get_item": {"dynamodb:BatchGetItem"},
        "batch_write_item": {"dynamodb:BatchWriteItem"},
    },
    "aws-sdk-lambda": {
        "invoke": {"lambda:InvokeFunction"},
        "invoke_with_response_stream": {"lambda:InvokeFunction"},
    },
    "aws-sdk-sqs": {
        "change_message_visibility": {"sqs:ChangeMessageVisibility"},
        "change_message_visibility_batch": {"sqs:ChangeMessageVisibility"},
    },
    "aws-sdk-sfn": {
        "start_execution": {"states:StartExecution"},
        "describe_execution": {"states:DescribeExecution"},
        "list_executions": {"states:ListExecutions"},
        "stop_execution": {"states:StopExecution"},
    },
}
# Operations that name an object version need the *Version action as well.
VERSIONED_ACTIONS = {
    "get_object": "s3:GetObjectVersion",
    "head_object": "s3:GetObjectVersion",
    "delete_object": "s3:DeleteObjectVersion",
}
MODEL_CALLS = {"invoke_model", "invoke_model_with_response_stream", "converse", "converse_stream"}
READS = {"get_object", "head_object"}
RAW_STRING = re.compile(r'b?r(#*)"')
IDENT_CHAR = re.compile(r"[A-Za-z0-9_]")
CHAR_LITERAL = re.compile(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'")


# ---------------------------------------------------------------- the code


def blank_literals(text):
    """Returns (code, literal): `text` with comments blanked, and with comments and the
    contents of string and char literals blanked too. Offsets are kept."""
    code, lit = list(text), list(text)
    i, n = 0, len(text)

    def blank(start, end, also_literal):
        for j in range(start, end):
            if text[j] != "\n":
                code[j] = " "
                if also_literal:
                    lit[j] = " "

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            blank(i, end, True)
            i = end
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j, True)
            i = j
        elif (raw := RAW_STRING.match(text, i)) and not (i and IDENT_CHAR.match(text, i - 1)):
            hashes = raw.group(1)
            end = text.find('"' + hashes, raw.end())
            end = n if end < 0 else end
            blank(raw.end(), end, False)
            i = end + 1 + len(hashes)
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            blank(i + 1, j, False)
            i = j + 1
        elif c == "'":
            m = CHAR_LITERAL.match(text, i)
            if m:
                blank(i + 1, m.end() - 1, False)
                i = m.end()
            else:
                i += 1  # a lifetime
        else:
            i += 1
    return "".join(code), "".join(lit)


def block_end(code, open_brace):
    """The index just past the `}` matching the `{` at `open_brace`."""
    depth = 0
    for j in range(open_brace, len(code)):
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(code)


def strip_tests(code, lit):
    """Blanks items under `#[cfg(test)]` (unit test modules are not deployed code)."""
    for m in reversed(list(re.finditer(r"#\[cfg\((all\()?test\b[^\]]*\]", code))):
        brace, semi = code.find("{", m.end()), code.find(";", m.end())
        end = semi + 1 if semi >= 0 and (brace < 0 or semi < brace) else block_end(code, brace)
        fill = re.sub(r"[^\n]", " ", code[m.start() : end])
        code = code[: m.start()] + fill + code[end:]
        lit = lit[: m.start()] + fill + lit[end:]
    return code, lit


# A parameter that is a streaming response's sink (`events: &mut Events`, not
# `Option<&mut Events>`). Only lambda-kit's streaming boundary makes an `Events` (its
# constructor is private), and it runs only with `RESPONSE_STREAMING=true`: a function that
# needs one is on the streaming path only.
STREAM_SINK = re.compile(r"\b[a-z_][a-z0-9_]*\s*:\s*&\s*mut\s+(?:[A-Za-z_][A-Za-z0-9_]*::)*Events\b")


class Fn:
    """One Rust function: its name, the type of its `impl` block, its parameters and body."""

    def __init__(self, name, owner, module, params, body, literal, path):
        self.name, self.owner, self.module = name, owner, module
        self.body, self.literal, self.path = body, literal, path
        self.streaming = bool(STREAM_SINK.search(params))

    def __repr__(self):
        return f"{self.path.relative_to(ROOT)}:{self.owner or self.module}::{self.name}"


def functions_in(path):
    """Every function with a body in one source file."""
    code, lit = strip_tests(*blank_literals(path.read_text()))
    impls = []  # (start, end, type name): `impl` and `trait` blocks
    for m in re.finditer(r"\b(impl|trait)\b", code):
        brace = code.find("{", m.end())
        header = code[m.end() : brace]
        if brace < 0 or ";" in header:
            continue
        if m.group(1) == "trait":
            header = re.match(r"\s*([A-Za-z_0-9]*)", header).group(1)
        header = header.split(" for ")[-1] if " for " in header else header
        header = re.sub(r"<[^<>]*(<[^<>]*>[^<>]*)*>", "", header)
        header = header.split("where")[0].strip().split("::")[-1].strip()
        impls.append((brace, block_end(code, brace), header))
    module = path.stem if path.stem not in ("lib", "mod", "main") else path.parent.name
    found = []
    for m in re.finditer(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)", code):
        brace, semi = code.find("{", m.end()), code.find(";", m.end())
        if brace < 0 or 0 <= semi < brace:
            continue  # a declaration without a body
        end = block_end(code, brace)
        owner = next((t for s, e, t in impls if s < m.start() < e), None)
        params = code[m.end() : brace]
        found.append(Fn(m.group(1), owner, module, params, code[brace:end], lit[brace:end], path))
    return found


def workspace_crates():
    """Crate name -> directory, for the workspace's path dependencies."""
    manifest = tomllib.loads((ROOT / "Cargo.toml").read_text())
    crates = {}
    for name, spec in manifest["workspace"]["dependencies"].items():
        if isinstance(spec, dict) and "path" in spec:
            crates[name] = ROOT / spec["path"]
    return crates


def deployed_dependencies(crate_dir):
    """Names in a crate's [dependencies] (not dev- or build-dependencies)."""
    manifest = tomllib.loads((crate_dir / "Cargo.toml").read_text())
    return set(manifest.get("dependencies", {}))


def sdk_operations(crate):
    """Every operation of an AWS SDK crate (its `src/operation/<op>/` folders), from the
    version in Cargo.lock."""
    lock = tomllib.loads((ROOT / "Cargo.lock").read_text())
    versions = [p["version"] for p in lock["package"] if p["name"] == crate]
    if not versions:
        raise AssertionError(f"{crate} is not in Cargo.lock")
    home = pathlib.Path(os.environ.get("CARGO_HOME", pathlib.Path.home() / ".cargo"))
    ops = set()
    for version in versions:
        dirs = list(home.glob(f"registry/src/*/{crate}-{version}/src/operation"))
        if not dirs:
            raise AssertionError(
                f"the sources of {crate} {version} are not under {home}/registry/src: run `cargo fetch`"
            )
        ops |= {d.name for d in dirs[0].iterdir() if d.is_dir()}
    return ops


class CodeFacts:
    """What one binary's code needs: IAM actions, and the SDK calls behind each, on its
    buffered path (`actions`: every function but those taking a stream sink, which that path
    never enters) and on its streaming path (`streaming_actions`: from the functions that
    take one, as `RESPONSE_STREAMING=true` serves every request through `Function::stream`)."""

    def __init__(self, crate_dir):
        crates = workspace_crates()
        seen, todo, sdks = set(), [crate_dir], set()
        while todo:
            d = todo.pop()
            if d in seen:
                continue
            seen.add(d)
            for dep in deployed_dependencies(d):
                if dep in crates:
                    todo.append(crates[dep])
                elif dep.startswith("aws-sdk-"):
                    sdks.add(dep)
        self.sdks = sdks
        self.ops = {crate: sdk_operations(crate) for crate in sorted(sdks)}
        fns = [f for d in seen for p in sorted((d / "src").rglob("*.rs")) for f in functions_in(p)]
        self.by_name = {}
        for f in fns:
            self.by_name.setdefault(f.name, []).append(f)
        roots = [f for f in fns if f.path.is_relative_to(crate_dir)]
        self.unmapped = set()
        # action -> SDK calls needing it ("fn: op")
        self.actions = self._actions(self._reach([f for f in roots if not f.streaming], buffered=True))
        self.streaming_actions = self._actions(self._reach([f for f in roots if f.streaming]))

    @property
    def streaming_only(self):
        """Actions only the streaming path needs."""
        return set(self.streaming_actions) - set(self.actions)

    def _actions(self, reachable):
        actions = {}
        for f in reachable:
            for action, why in self._needs(f):
                actions.setdefault(action, set()).add(f"{f!r}: {why}")
        return actions

    def _callees(self, f):
        body = f.body
        for m in re.finditer(r"(\.|::)?\s*\b([A-Za-z_][A-Za-z0-9_]*)\s*(::<[^()]*>)?\s*\(", body):
            sep, name = m.group(1), m.group(2)
            for g in self.by_name.get(name, []):
                if g is f:
                    continue
                if sep == ".":
                    if g.owner is not None:
                        yield g
                elif sep == "::":
                    qualifier = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*::\s*$", body[: m.start() + 2])
                    q = qualifier.group(1) if qualifier else ""
                    if q in ("Self", "self", "super", "crate") or q in (g.owner, g.module):
                        yield g
                elif g.owner is None:
                    yield g

    def _reach(self, roots, buffered=False):
        """The functions `roots` reach; `buffered`: without entering those that take a
        stream sink."""
        seen, todo = [], list(roots)
        ids = set()
        while todo:
            f = todo.pop()
            if id(f) in ids or (buffered and f.streaming):
                continue
            ids.add(id(f))
            seen.append(f)
            todo.extend(self._callees(f))
        return seen

    def _needs(self, f):
        """IAM actions for the SDK calls made directly in `f`'s body."""
        for crate, ops in self.ops.items():
            for m in re.finditer(r"\.\s*([a-z_0-9]+)\s*\(\s*\)", f.body):
                op = m.group(1)
                if op not in ops:
                    continue
                actions = OPERATION_ACTIONS.get(crate, {}).get(op)
                if actions is None:
                    self.unmapped.add(f"{f!r}: {crate} {op}")
                    continue
                for action in actions:
                    yield action, op
                # A builder given a version id (`.version_id(x)` / `.set_version_id(x)`).
                if op in VERSIONED_ACTIONS and re.search(
                    r"\.\s*(set_)?version_id\s*\(\s*[^)\s]", f.body
                ):
                    yield VERSIONED_ACTIONS[op], f"{op} with a version id"
                if op in MODEL_CALLS and re.search(
                    r"\.\s*(set_)?guardrail_identifier\s*\(\s*[^)\s]", f.body
                ):
                    yield "bedrock:ApplyGuardrail", f"{op} with a guardrail"
                # Telling a missing key from AccessDenied needs s3:ListBucket on the bucket.
                if op in READS and re.search(
                    r"NoSuchKey|NotFound|is_not_found|is_no_such_key",
                    " ".join(g.literal for g in self._reach([f])),
                ):
                    yield "s3:ListBucket", f"{op}, NoSuchKey told apart"


# ---------------------------------------------------------------- the README tables

RESOURCE_WORDS = (
    "model", "guardrail", "bucket", "jobs table", "this function", "task functions",
    "event source queues", "batch state machine", "batch executions",
)
# What Lambda's poller needs on an SQS event source, with the function's role (AWS: "Lambda
# execution role permissions" for Amazon SQS).
POLLER_ACTIONS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
POLLER_WORD = "event source queues"
# What the streaming path of a function calls: the model only.
MODEL_ACTIONS = {"bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream", "bedrock:ApplyGuardrail"}
STREAM_ACTION = "bedrock:InvokeModelWithResponseStream"
WORDS = re.compile(r"`([^`]+)`|\b(" + "|".join(RESOURCE_WORDS + ("none",)) + r")\b")


def declared(readme):
    """The README's IAM table: a list of (action, resources, functions). Resources are object
    prefixes (`incoming/*`) or the words model, guardrail, bucket, jobs table (the table the
    function's `JOBS_TABLE` names), this function (its own `FunctionName`: job workers) and
    task functions (those its `*_FUNCTION` variables name), batch state machine and batch
    executions (its `BATCH_STATE_MACHINE_ARN` and that machine's executions); `none` marks an action the code
    can reach but this function never needs (the reason in the row). `functions` are the
    logical ids a `| function |` column names (a binary deployed as several functions), None
    without that column."""
    text = readme.read_text()
    section = re.search(r"^## IAM permissions\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if not section:
        raise AssertionError(f"{readme.relative_to(ROOT)} has no '## IAM permissions' section")
    rows = []
    lines = section.group(1).splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("| action |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    column = header.index("function") if "function" in header else None
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        action = cells[0].strip("`")
        words = WORDS.findall(cells[1])
        resources = {a or b for a, b in words}
        names = set(re.findall(r"`([^`]+)`", cells[column])) if column is not None else None
        rows.append((action, resources, names))
    return rows


def table_for(rows, function, streaming):
    """action -> resources of the rows of a README table that apply to one deployed function:
    those naming it in the `function` column; without that column, every row for a buffered
    function and the model rows for a streaming one (its path makes model calls only)."""
    table = {}
    for action, resources, names in rows:
        applies = function in names if names is not None else not streaming or action in MODEL_ACTIONS
        if applies:
            if action in table:
                raise AssertionError(f"{function}: {action} listed twice")
            table[action] = resources
    return table


# ---------------------------------------------------------------- the template

NO_VALUE = object()


class Stack:
    """template.yaml evaluated for one set of parameter values."""

    ACCOUNT, PARTITION = "123456789012", "aws"

    def __init__(self, template, region, **overrides):
        self.template, self.region = template, region
        self.params = {}
        for name, spec in template.get("Parameters", {}).items():
            value = str(overrides.get(name, spec.get("Default", "")))
            listed = spec["Type"] == "CommaDelimitedList"
            pattern = spec.get("AllowedPattern")
            # CloudFormation matches a list's pattern against each of its values.
            for item in value.split(",") if listed else [value]:
                if pattern and not re.fullmatch(pattern, item):
                    raise ValueError(f"{name}: {item!r} does not match {pattern}")
            self.params[name] = value.split(",") if listed else value
        self.bucket = "{}-{}-{}-{}".format(
            self.params["DocumentsBucketPrefix"], self.params["Stage"], self.ACCOUNT, region
        )
        self.conditions = {}

    def ref(self, name):
        pseudo = {
            "AWS::Partition": self.PARTITION,
            "AWS::Region": self.region,
            "AWS::AccountId": self.ACCOUNT,
            "AWS::StackName": "stack",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.params:
            return self.params[name]
        if self.function_name(name) is not None:
            return self.function_name(name)
        res = self.template["Resources"].get(name, {})
        if res.get("Type") == "AWS::Serverless::StateMachine" and "Name" in res.get("Properties", {}):
            machine = self.eval(res["Properties"]["Name"])
            return f"arn:{self.PARTITION}:states:{self.region}:{self.ACCOUNT}:stateMachine:{machine}"
        return f"ref-{name}"

    def function_name(self, resource):
        """A function's explicit `FunctionName`, evaluated (None without one)."""
        res = self.template["Resources"].get(resource, {})
        name = res.get("Properties", {}).get("FunctionName")
        if res.get("Type") != "AWS::Serverless::Function" or name is None:
            return None
        return self.eval(name)

    def function_arn(self, name):
        return f"arn:{self.PARTITION}:lambda:{self.region}:{self.ACCOUNT}:function:{name}"

    def getatt(self, resource, attribute):
        """`Fn::GetAtt`: a named function's or a table's ARN, otherwise a placeholder."""
        name = self.function_name(resource)
        if attribute == "Arn" and name is not None:
            return self.function_arn(name)
        kind = self.template["Resources"].get(resource, {}).get("Type")
        if attribute == "Arn" and kind == "AWS::SQS::Queue":
            # CloudFormation names a queue without QueueName <stack>-<logical id>-<suffix>.
            return f"arn:{self.PARTITION}:sqs:{self.region}:{self.ACCOUNT}:stack-{resource}-GENERATED"
        if attribute == "Arn" and kind == "AWS::DynamoDB::Table":
            # CloudFormation names a table without TableName <stack>-<logical id>-<suffix>.
            table = f"stack-{resource}-GENERATED"
            return f"arn:{self.PARTITION}:dynamodb:{self.region}:{self.ACCOUNT}:table/{table}"
        return f"getatt-{resource}.{attribute}"

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = self.truth(self.template["Conditions"][name])
        return self.conditions[name]

    def truth(self, node):
        (fn, arg), = node.items()
        if fn == "Condition":
            return self.condition(arg)
        if fn == "Fn::Not":
            return not self.truth(arg[0])
        if fn == "Fn::And":
            return all(self.truth(a) for a in arg)
        if fn == "Fn::Or":
            return any(self.truth(a) for a in arg)
        if fn == "Fn::Equals":
            return self.eval(arg[0]) == self.eval(arg[1])
        raise AssertionError(f"unsupported condition function {fn}")

    def eval(self, node):
        if isinstance(node, list):
            return [v for v in (self.eval(x) for x in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Fn::If":
                return self.eval(arg[1] if self.condition(arg[0]) else arg[2])
            if fn == "Fn::Join":
                if not isinstance(arg[0], str):
                    raise AssertionError("Fn::Join takes a literal delimiter only")
                return arg[0].join(self.eval(arg[1]))
            if fn == "Fn::Split":
                return self.eval(arg[1]).split(arg[0])
            if fn == "Fn::Select":
                items = self.eval(arg[1])
                index = int(self.eval(arg[0]))
                if index >= len(items):
                    raise AssertionError(f"Fn::Select index {index} out of range: {items}")
                return items[index]
            if fn == "Fn::Sub":
                text, names = (arg, {}) if isinstance(arg, str) else (arg[0], self.eval(arg[1]))

                def value(m):
                    name = m.group(1)
                    if name.startswith("!"):
                        return "${" + name[1:] + "}"
                    if name in names:
                        return names[name]
                    if "." in name:
                        return self.getatt(*name.split(".", 1))
                    v = self.ref(name)
                    if not isinstance(v, str):
                        raise AssertionError(f"${{{name}}} is not a string in {text}")
                    return v

                return re.sub(r"\$\{([^}]+)\}", value, text)
            if fn == "Fn::GetAtt":
                return self.getatt(*(arg.split(".", 1) if isinstance(arg, str) else arg))
        return {k: v for k, v in ((k, self.eval(v)) for k, v in node.items()) if v is not NO_VALUE}

    def grants(self, resource):
        """The (action, resource ARN) pairs a function's `Policies` allow."""
        policies = self.template["Resources"][resource]["Properties"].get("Policies", [])
        pairs = set()
        for policy in policies:
            if not (isinstance(policy, dict) and "Statement" in policy):
                raise AssertionError(
                    f"{resource}: only inline policy documents are checked, not {policy!r}"
                )
            for statement in self.eval(policy["Statement"]):
                if statement.get("Effect") != "Allow" or set(statement) - {
                    "Sid", "Effect", "Action", "Resource", "Condition"
                }:
                    raise AssertionError(f"{resource}: unsupported statement {statement}")
                actions = statement["Action"]
                arns = statement["Resource"]
                actions = [actions] if isinstance(actions, str) else actions
                arns = [arns] if isinstance(arns, str) else arns
                if "Condition" in statement:
                    # Only a listing limited to prefixes: ListBucket on `bucket` with
                    # s3:prefix `p` counts as ListBucket on `bucket/p` (README: `p`).
                    condition = statement["Condition"]
                    prefixes = condition.get("StringLike", {}).get("s3:prefix")
                    if actions != ["s3:ListBucket"] or list(condition) != ["StringLike"] or not prefixes:
                        raise AssertionError(f"{resource}: unsupported condition {statement}")
                    prefixes = [prefixes] if isinstance(prefixes, str) else prefixes
                    arns = [f"{a}/{p}" for a in arns for p in prefixes]
                pairs |= {(a, r) for a in actions for r in arns if r}
        return pairs

    def variables(self, function):
        """A function's own environment variables, unevaluated."""
        props = self.template["Resources"][function]["Properties"]
        return props.get("Environment", {}).get("Variables", {})

    def function_words(self, function):
        """ARNs of the words that depend on the function: its jobs table, itself, and the
        functions it forwards tasks to."""
        env = self.variables(function)
        table = env.get("JOBS_TABLE")
        if isinstance(table, dict) and set(table) == {"Ref"}:
            kind = self.template["Resources"].get(table["Ref"], {}).get("Type")
            if kind != "AWS::DynamoDB::Table":
                raise AssertionError(f"{function}: JOBS_TABLE names {table['Ref']}, a {kind}")
            tables = {self.getatt(table["Ref"], "Arn")}
        else:
            tables = set()
        own = self.function_name(function)
        tasks = {self.eval(v) for k, v in env.items() if k.endswith("_FUNCTION")}
        machine = self.eval(env["BATCH_STATE_MACHINE_ARN"]) if "BATCH_STATE_MACHINE_ARN" in env else None
        return {
            "batch state machine": {machine} if machine else set(),
            "batch executions": {machine.replace(":stateMachine:", ":execution:", 1) + ":*"} if machine else set(),
            "jobs table": tables,
            "this function": {self.function_arn(own)} if own else set(),
            "task functions": {self.function_arn(t) for t in tasks},
            POLLER_WORD: self.event_source_queues(function),
        }

    def event_source_queues(self, function):
        """ARNs of the SQS queues an `AWS::Lambda::EventSourceMapping` feeds `function` from."""
        queues = set()
        for res in self.template["Resources"].values():
            props = res.get("Properties", {})
            if res.get("Type") != "AWS::Lambda::EventSourceMapping":
                continue
            if props.get("FunctionName") != {"Ref": function}:
                continue
            source = props.get("EventSourceArn")
            target = source.get("Fn::GetAtt") if isinstance(source, dict) else None
            target = target.split(".", 1) if isinstance(target, str) else target
            if target and self.template["Resources"][target[0]]["Type"] == "AWS::SQS::Queue":
                queues.add(self.getatt(*target))
        return queues

    def expected(self, rows, function):
        """(action, ARN) pairs for `function`'s README table's granted rows in this stack."""
        p = self.params
        bedrock = f"arn:{self.PARTITION}:bedrock"
        model = {f"{bedrock}:{self.region}:{self.ACCOUNT}:inference-profile/{p['ModelId']}"}
        model |= {
            f"{bedrock}:{r}::foundation-model/{p['FoundationModelId']}"
            for r in p["ModelDestinationRegions"].split(",")
        }
        model |= {a for a in p["FallbackModelResourceArns"] if a}
        guardrail = (
            {f"{bedrock}:{self.region}:{self.ACCOUNT}:guardrail/{p['GuardrailId']}"}
            if p["GuardrailId"]
            else set()
        )
        s3 = f"arn:{self.PARTITION}:s3:::{self.bucket}"
        words = {"model": model, "guardrail": guardrail, "bucket": {s3}}
        words |= self.function_words(function)
        pairs = set()
        for action, resources in rows.items():
            for r in resources - {"none"}:
                arns = words.get(r)
                if arns == set() and r not in ("guardrail",):
                    raise AssertionError(f"{function}: {action} on {r!r}, which it does not configure")
                if arns is None:
                    if not r.endswith("/*"):
                        raise AssertionError(f"{action}: resource {r!r} is not a prefix/* or a word")
                    arns = {f"{s3}/{r}"}
                pairs |= {(action, a) for a in arns}
        return pairs


def poller_rows(table):
    """The actions of a README table granted on the event source queues only."""
    return {a for a, resources in table.items() if resources == {POLLER_WORD}}


def functions(template):
    """(logical id, crate directory) of each Rust function in the template."""
    for name, res in template["Resources"].items():
        if res["Type"] == "AWS::Serverless::Function":
            binary = res.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
            if binary:
                yield name, ROOT / "functions" / binary


def is_streaming(template, name):
    """Whether the function serves a streaming function URL (`RESPONSE_STREAMING`): the
    same binary as a buffered function, reaching only its model calls."""
    env = template["Resources"][name]["Properties"].get("Environment", {}).get("Variables", {})
    return env.get("RESPONSE_STREAMING") == "true"



def load_template(path=ROOT / "template.yaml"):
    template, problems = decode(str(path))
    if problems:
        raise AssertionError(f"{path} does not parse: {problems}")
    return template


# Parameter sets the policies are evaluated with: the defaults, then every optional grant
# on, in another Region with the EU profile, and the most destination Regions allowed.
SCENARIOS = [
    ("defaults", "us-east-1", {}),
    (
        "fallbacks, guardrail, EU profile",
        "eu-west-1",
        {
            "ModelId": "eu.meta.llama3-2-3b-instruct-v1:0",
            "ModelDestinationRegions": "eu-central-1,eu-west-1,eu-west-3",
            "FallbackModelIds": "eu.meta.llama3-2-1b-instruct-v1:0",
            "FallbackModelResourceArns": (
                "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.meta.llama3-2-1b-instruct-v1:0,"
                "arn:aws:bedrock:eu-central-1::foundation-model/meta.llama3-2-1b-instruct-v1:0"
            ),
            "GuardrailId": "abc123def456",
        },
    ),
    ("one Region", "us-west-2", {"ModelDestinationRegions": "us-west-2"}),
]


class PermissionsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.template = load_template()
        every = list(functions(cls.template))
        cls.functions = [(n, c) for n, c in every if not is_streaming(cls.template, n)]
        cls.streaming = [(n, c) for n, c in every if is_streaming(cls.template, n)]
        crates = {c: CodeFacts(c) for c in sorted({c for _, c in every})}
        cls.rows = {c: declared(c / "README.md") for c in crates}
        cls.code = {name: crates[crate] for name, crate in every}
        cls.tables = {
            name: table_for(cls.rows[crate], name, is_streaming(cls.template, name))
            for name, crate in every
        }

    def test_there_are_functions_to_check(self):
        self.assertEqual(
            sorted(c.name for _, c in self.functions),
            ["classify-ticket", "jobs", "summarize-document", "translate"],
        )
        self.assertEqual(
            sorted(c.name for _, c in self.streaming), ["summarize-document", "translate"]
        )

    def test_function_columns_name_functions_of_their_binary(self):
        for crate, rows in self.rows.items():
            deployed = {n for n, c in self.functions + self.streaming if c == crate}
            for action, _, names in rows:
                if names is None:
                    continue
                with self.subTest(readme=crate.name, action=action):
                    self.assertTrue(names, "a row that names no function")
                    self.assertEqual(sorted(names - deployed), [], f"not deployed from {crate.name}")

    def test_streaming_functions_get_model_actions_only(self):
        for name, _ in self.streaming:
            with self.subTest(function=name):
                self.assertIn(STREAM_ACTION, self.tables[name])
                self.assertEqual(sorted(set(self.tables[name]) - MODEL_ACTIONS), [])

    def test_streaming_only_actions_are_granted_to_the_streaming_functions_only(self):
        for label, region, overrides in SCENARIOS:
            stack = Stack(self.template, region, **overrides)
            for name, _ in self.functions + self.streaming:
                only = self.code[name].streaming_only
                listed = set(self.tables[name])
                granted = {a for a, _ in stack.grants(name)}
                with self.subTest(scenario=label, function=name):
                    if is_streaming(self.template, name):
                        self.assertEqual(sorted(only - listed), [], f"{name}: its README rows lack these")
                        self.assertEqual(sorted(only - granted), [], f"{name}: its policy lacks these")
                    else:
                        self.assertEqual(sorted(only & listed), [], f"{name} never streams: README rows")
                        self.assertEqual(sorted(only & granted), [], f"{name} never streams: granted")

    def test_only_streaming_translations_and_summaries_invoke_with_response_stream(self):
        # Buffered translations never stream; POST /summaries streams its final summary.
        self.assertEqual(self.code["TranslateFunction"].streaming_only, {STREAM_ACTION})
        self.assertIn(STREAM_ACTION, self.code["SummarizeDocumentFunction"].actions)
        for label, region, overrides in SCENARIOS:
            stack = Stack(self.template, region, **overrides)
            streams = {
                name for name, _ in self.functions + self.streaming
                if STREAM_ACTION in {a for a, _ in stack.grants(name)}
            }
            with self.subTest(scenario=label):
                self.assertEqual(
                    sorted(streams),
                    ["SummarizeDocumentFunction", "SummarizeStreamFunction", "TranslateStreamFunction"],
                )

    def test_every_sdk_operation_called_has_an_iam_mapping(self):
        for name, facts in self.code.items():
            with self.subTest(function=name):
                self.assertEqual(sorted(facts.unmapped), [], "add these to OPERATION_ACTIONS")

    def needed(self, name):
        """The actions buffered function `name`'s code needs: SQS calls only with an event
        source queue."""
        queues = Stack(self.template, "us-east-1").event_source_queues(name)
        return {a: w for a, w in self.code[name].actions.items() if queues or not a.startswith("sqs:")}

    def test_readme_tables_list_exactly_the_actions_the_code_needs(self):
        for name, _ in self.functions:
            with self.subTest(function=name):
                table = self.tables[name]
                needed = self.needed(name)
                missing = {a: sorted(w) for a, w in needed.items() if a not in table}
                self.assertEqual(missing, {}, f"{name}: the code needs actions its README does not list")
                unused = sorted(set(table) - set(needed) - poller_rows(table))
                self.assertEqual(unused, [], f"{name}: README lists actions no code needs")

    def test_queue_consumers_get_exactly_the_poller_grants_and_no_sam_sqs_events(self):
        stack = Stack(self.template, "us-east-1")
        for name, _ in self.functions:
            queues = stack.event_source_queues(name)
            consumer = POLLER_ACTIONS | {a for a in self.needed(name) if a.startswith("sqs:")} if queues else set()
            with self.subTest(function=name):
                self.assertEqual(poller_rows(self.tables[name]), consumer)
                granted = {(a, r) for a, r in stack.grants(name) if a.startswith("sqs:")}
                self.assertEqual(granted, {(a, q) for a in consumer for q in queues})
                events = self.template["Resources"][name]["Properties"].get("Events", {})
                self.assertNotIn("SQS", {e.get("Type") for e in events.values()})
        self.assertTrue(stack.event_source_queues("SummarizeDocumentFunction"))

    def test_policies_grant_exactly_the_readme_tables(self):
        for label, region, overrides in SCENARIOS:
            stack = Stack(self.template, region, **overrides)
            for name, _ in self.functions + self.streaming:
                with self.subTest(scenario=label, function=name):
                    granted = stack.grants(name)
                    wanted = stack.expected(self.tables[name], name)
                    self.assertEqual(sorted(granted - wanted), [], f"{name}: granted, not needed")
                    self.assertEqual(sorted(wanted - granted), [], f"{name}: needed, not granted")

    def test_prefixes_the_function_is_configured_with_are_in_its_table(self):
        for name, crate in self.functions:
            env = (
                self.template["Resources"][name]["Properties"]
                .get("Environment", {})
                .get("Variables", {})
            )
            prefixes = {v for k, v in env.items() if k.endswith("_PREFIX") and isinstance(v, str)}
            listed = set().union(*self.tables[name].values())
            with self.subTest(function=name):
                self.assertEqual(
                    sorted(p for p in prefixes if f"{p}*" not in listed), [], "prefix without grants"
                )

    def test_no_foundation_model_arn_has_a_wildcard_region(self):
        for label, region, overrides in SCENARIOS:
            stack = Stack(self.template, region, **overrides)
            for name, _ in self.functions:
                for action, arn in stack.grants(name):
                    with self.subTest(scenario=label, function=name, arn=arn):
                        self.assertNotIn("*", arn.split(":")[3])

    def test_destination_regions_are_bounded_by_the_parameter_pattern(self):
        regions = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1",
                   "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1"]
        most = self.template["Parameters"]["ModelDestinationRegions"]
        slots = len([c for c in self.template["Conditions"] if re.fullmatch(r"ModelRegion\d+", c)]) + 1
        for count in range(1, slots + 1):
            stack = Stack(self.template, "us-east-1", ModelDestinationRegions=",".join(regions[:count]))
            arns = {a for _, a in stack.grants("ClassifyTicketFunction") if ":foundation-model/" in a}
            self.assertEqual(len(arns), count)
        with self.assertRaises(ValueError, msg=most["AllowedPattern"]):
            Stack(self.template, "us-east-1", ModelDestinationRegions=",".join(regions[: slots + 1]))


class AnalysisTest(unittest.TestCase):
    """The code scan itself finds what it should."""

    def test_literals_and_comments_do_not_count(self):
        code, lit = blank_literals('let a = "{ .get_object() }"; // .put_object()\nx.head_object()')
        self.assertNotIn("get_object", code)
        self.assertNotIn("put_object", code)
        self.assertIn(".head_object()", code)
        self.assertIn("get_object", lit)

    def test_raw_strings_and_char_literals_do_not_break_blocks(self):
        code, _ = blank_literals("let a = '{'; let b = r#\"{ x.put_object() \"#; fn f() { s3.get_object() }")
        self.assertNotIn("put_object", code)
        self.assertEqual(code.count("{"), code.count("}"))

    def test_calls_are_followed_into_methods_and_modules(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = pathlib.Path(tmp, "storage.rs")
            path.write_text(
                "pub async fn put(s3: &Client) { s3.put_object().send().await; }\n"
                "struct C; impl C { fn go(&self) { storage::put(&self.s3); } }\n"
                "trait T { fn run(&self) { self.go(); } }\n"
            )
            fns = {f.name: f for f in functions_in(path)}
        self.assertEqual((fns["go"].owner, fns["run"].owner, fns["put"].module), ("C", "T", "storage"))
        self.assertIn(".put_object()", fns["put"].body)

    def test_code_that_needs_a_stream_sink_is_left_off_the_buffered_path(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = pathlib.Path(tmp, "handler.rs")
            path.write_text(
                "async fn run(c: &Client, events: Option<&mut Events>) {\n"
                "    match events { Some(e) => streamed(c, e).await, None => buffered(c).await }\n}\n"
                "async fn buffered(c: &Client) { c.invoke_model().send().await; }\n"
                "async fn streamed(c: &Client, events: &mut streaming::Events) {\n"
                "    c.invoke_model_with_response_stream().send().await;\n}\n"
            )
            fns = functions_in(path)
        self.assertEqual({f.name for f in fns if f.streaming}, {"streamed"})
        facts = CodeFacts.__new__(CodeFacts)
        facts.by_name = {f.name: [f] for f in fns}
        run = [f for f in fns if f.name == "run"]
        self.assertEqual({f.name for f in facts._reach(run, buffered=True)}, {"run", "buffered"})
        self.assertEqual({f.name for f in facts._reach(run)}, {"run", "buffered", "streamed"})

    def test_test_modules_are_left_out(self):
        code, _ = strip_tests(*blank_literals("fn a() {}\n#[cfg(test)]\nmod tests { fn b() { s3.delete_object() } }"))
        self.assertNotIn("delete_object", code)
        self.assertIn("fn a", code)


if __name__ == "__main__":
    unittest.main()
