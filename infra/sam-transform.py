"""Expands infra/template.yaml with the real SAM transform (aws-sam-translator, the library
CloudFormation's AWS::Serverless transform runs) and writes the plain CloudFormation result.

cfn-lint validates SAM resources against SAM's schemas without expanding them, so a reference to
a resource SAM generates (the schedule's rule, the stage, an event source mapping) is not checked
against the name SAM really gives it. Linting the expansion is. Run by scripts/lint-infra.

    python infra/sam-transform.py infra/template.yaml OUT.json
"""

import json
import os
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The template names no AWS managed policies, so none need looking up (no AWS call)."""

    def load(self):
        return {}


def main(source: str, destination: str) -> None:
    with open(source, encoding="utf-8") as handle:
        template = yaml_parse(handle.read())
    # `sam build` and `sam package` replace the local CodeUri with the uploaded artifact's S3 URI
    # before the transform runs; do the same with a placeholder.
    template["Globals"]["Function"]["CodeUri"] = "s3://artifacts-placeholder/function.zip"
    # Required parameters without defaults; their values do not change the expansion's shape.
    parameters = {"JwtIssuer": "https://issuer.example.com/", "JwtAudience": "coins-api"}
    # The transform resolves pseudo parameters such as AWS::Region; any region will do.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    expanded = transform(template, parameters, NoManagedPolicies())
    with open(destination, "w", encoding="utf-8") as handle:
        json.dump(expanded, handle, indent=1)
        handle.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
