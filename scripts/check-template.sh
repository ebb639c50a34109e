#!/usr/bin/env bash
# Checks the deployment definitions offline: cfn-lint and `sam validate` on template.yaml,
# then every state machine's DefinitionSubstitutions against its ASL placeholders, and
# asl-validator (npm) on each ASL with the placeholders filled in; then the functions' IAM
# policies against their READMEs' permission tables and the SDK calls in their code
# (tests/template; reads the AWS SDK crates' sources, so after a cargo build or `cargo fetch`).
# Needs the venv from scripts/setup.sh (cfn-lint, aws-sam-cli); installs asl-validator
# with `npm ci` when node_modules is missing. No AWS account or network access to AWS.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

venv="$root/.venv"
if [ ! -x "$venv/bin/cfn-lint" ] || [ ! -x "$venv/bin/sam" ]; then
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/scripts/requirements.txt"
fi
if [ ! -x "$root/node_modules/.bin/asl-validator" ]; then
  npm ci --silent --no-audit --no-fund
fi

# Offline: a fake region and credentials, no telemetry, no instance metadata lookups.
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x
unset AWS_SESSION_TOKEN AWS_PROFILE
export AWS_EC2_METADATA_DISABLED=true SAM_CLI_TELEMETRY=0

echo "check-template: cfn-lint (with informational checks)"
"$venv/bin/cfn-lint" --include-checks I -- template.yaml

echo "check-template: sam validate, sam validate --lint"
"$venv/bin/sam" validate --template template.yaml
"$venv/bin/sam" validate --lint --template template.yaml

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "check-template: DefinitionSubstitutions match the ASL placeholders"
"$venv/bin/python" - "$work" <<'PY'
"""Fills each state machine's ${...} placeholders from its DefinitionSubstitutions with
realistic values (function ARNs, parameter defaults) and writes the result to a folder."""
import json
import pathlib
import re
import sys

from cfnlint.decode import decode

out = pathlib.Path(sys.argv[1])
template, problems = decode("template.yaml")
if problems:
    sys.exit(f"template.yaml does not parse: {problems}")
resources = template["Resources"]
parameters = template.get("Parameters", {})


def sample(value):
    """A stand-in for a substitution's deployed value."""
    if isinstance(value, dict) and "Fn::If" in value:
        return sample(value["Fn::If"][1])  # the true branch (for the caps: the derived value)
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target, attribute = value["Fn::GetAtt"]
        kind = resources[target]["Type"]
        if kind == "AWS::Serverless::Function" and attribute == "Arn":
            return f"arn:aws:lambda:us-east-1:123456789012:function:{target}"
        if kind.startswith("Custom::"):
            return "4"  # CapacityPlan's caps are integers
        return f"arn:aws:example:us-east-1:123456789012:{target}"
    if isinstance(value, dict) and "Ref" in value:
        name = value["Ref"]
        if name in parameters:
            return str(parameters[name].get("Default", "x"))
        if resources[name]["Type"] == "AWS::S3::Bucket":
            return "example-documents-bucket"
        return name
    if isinstance(value, str):
        return value
    sys.exit(f"unsupported substitution value {value!r}")


failed = False
count = 0
for name, resource in resources.items():
    if resource["Type"] != "AWS::Serverless::StateMachine":
        continue
    props = resource["Properties"]
    uri = props.get("DefinitionUri")
    if not isinstance(uri, str):
        continue
    text = pathlib.Path(uri).read_text()
    json.loads(text)  # valid JSON before substitution: placeholders sit inside strings
    subs = {k: sample(v) for k, v in props.get("DefinitionSubstitutions", {}).items()}
    used = set(re.findall(r"\$\{([^}]+)\}", text))
    for missing in sorted(used - subs.keys()):
        print(f"  {uri}: ${{{missing}}} has no DefinitionSubstitutions entry in {name}")
        failed = True
    for unused in sorted(subs.keys() - used):
        print(f"  {name}: DefinitionSubstitutions {unused} is not used in {uri}")
        failed = True
    filled = re.sub(r"\$\{([^}]+)\}", lambda m: subs.get(m.group(1), m.group(0)), text)
    json.loads(filled)
    (out / pathlib.Path(uri).name).write_text(filled)
    count += 1
    print(f"  {name}: {uri} uses {len(used)} substitutions")
if count == 0:
    sys.exit("no AWS::Serverless::StateMachine with a local DefinitionUri in template.yaml")
sys.exit(1 if failed else 0)
PY

echo "check-template: asl-validator"
for definition in "$work"/*.json; do
  "$root/node_modules/.bin/asl-validator" --json-path "$definition"
done
echo "check-template: IAM policies grant exactly what the code calls"
"$venv/bin/python" -m unittest discover -s "$root/tests/template" -t "$root/tests/template"

echo "check-template: ok"
