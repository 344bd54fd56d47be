//! The deployment agrees with the contract: the SAM template routes exactly the OpenAPI
//! document's operations with the same authorization, deploys the ledger's table definition, and
//! keeps the properties the design relies on (one binary per function, least privilege, the
//! webhook secret out of the environment, partial batch failures on the stream).

use std::collections::BTreeSet;

use coins_testkit::function_names;
use infra_check::{
    Access, normalise_table, openapi_routes, parse_template, read, resources_of_type,
    template_routes, template_table,
};
use serde_json::{Value as Json, json};

fn template() -> Json {
    parse_template(&read("infra/template.yaml").expect("template readable"))
        .expect("template parses")
}

fn openapi() -> Json {
    serde_json::from_str(&read("api/openapi.json").expect("document readable"))
        .expect("document parses")
}

fn functions(template: &Json) -> Vec<(&str, &Json)> {
    resources_of_type(template, "AWS::Serverless::Function").expect("resources")
}

fn function_by_binary<'a>(template: &'a Json, binary: &str) -> &'a Json {
    functions(template)
        .into_iter()
        .find(|(_, f)| {
            f.pointer("/Metadata/BuildProperties/Binary")
                .and_then(Json::as_str)
                == Some(binary)
        })
        .map(|(_, f)| f)
        .unwrap_or_else(|| panic!("no function builds {binary}"))
}

#[test]
fn template_routes_are_exactly_the_openapi_operations_with_the_same_authorization() {
    let deployed = template_routes(&template()).expect("template routes");
    let documented = openapi_routes(&openapi()).expect("document routes");

    let mut differences = Vec::new();
    for (route, access) in &documented {
        match deployed.get(route) {
            None => differences.push(format!(
                "{} {} is documented but not deployed",
                route.0, route.1
            )),
            Some(deployed_access) if deployed_access != access => differences.push(format!(
                "{} {}: documented {access:?}, deployed {deployed_access:?}",
                route.0, route.1
            )),
            Some(_) => {}
        }
    }
    for route in deployed
        .keys()
        .filter(|route| !documented.contains_key(*route))
    {
        differences.push(format!(
            "{} {} is deployed but not documented",
            route.0, route.1
        ));
    }
    assert!(
        differences.is_empty(),
        "template and OpenAPI disagree:\n{}",
        differences.join("\n")
    );
    assert_eq!(deployed.len(), 13, "the API has 13 routes");
}

#[test]
fn only_the_webhook_is_public_and_only_the_admin_refund_needs_the_admin_scope() {
    let deployed = template_routes(&template()).expect("template routes");
    let public: Vec<_> = deployed
        .iter()
        .filter(|(_, a)| **a == Access::Public)
        .map(|(r, _)| r.1.as_str())
        .collect();
    assert_eq!(public, ["/v1/webhooks/payments"]);
    let admin: Vec<_> = deployed
        .iter()
        .filter(|(_, a)| matches!(a, Access::Jwt { scopes } if !scopes.is_empty()))
        .map(|(r, a)| (r.1.as_str(), a.clone()))
        .collect();
    assert_eq!(
        admin,
        [(
            "/v1/admin/purchases/{purchase_id}/refund",
            Access::Jwt {
                scopes: vec!["coins:admin".to_owned()]
            }
        )]
    );
}

#[test]
fn template_table_matches_the_ledger_table_definition() {
    let template = template();
    let deployed = normalise_table(template_table(&template).expect("one table"));
    let defined = normalise_table(&coins_ledger::dynamo::table_definition_json());
    let defined = defined
        .as_object()
        .expect("the ledger's definition is an object");
    assert!(!defined.is_empty());
    for (property, value) in defined {
        assert_eq!(
            deployed.get(property),
            Some(value),
            "table property {property} differs from the ledger's definition"
        );
    }
}

#[test]
fn template_table_is_kept_recoverable_and_encrypted() {
    let template = template();
    let table = template_table(&template).expect("one table");
    assert_eq!(
        table.pointer("/PointInTimeRecoverySpecification/PointInTimeRecoveryEnabled"),
        Some(&json!(true))
    );
    assert_eq!(
        table.pointer("/SSESpecification/SSEEnabled"),
        Some(&json!(true))
    );
    assert_eq!(
        table.pointer("/SSESpecification/SSEType"),
        Some(&json!("KMS"))
    );
    assert_eq!(table.get("DeletionProtectionEnabled"), Some(&json!(true)));
    let (_, resource) = resources_of_type(&template, "AWS::DynamoDB::Table").expect("resources")[0];
    assert_eq!(resource.get("DeletionPolicy"), Some(&json!("Retain")));
    assert_eq!(resource.get("UpdateReplacePolicy"), Some(&json!("Retain")));
}

#[test]
fn every_function_is_one_workspace_binary_built_by_cargo_lambda_for_arm64() {
    let template = template();
    let globals = template
        .pointer("/Globals/Function")
        .expect("function globals");
    assert_eq!(globals.get("Runtime"), Some(&json!("provided.al2023")));
    assert_eq!(globals.get("Handler"), Some(&json!("bootstrap")));
    assert_eq!(globals.get("Architectures"), Some(&json!(["arm64"])));
    assert_eq!(
        globals.get("CodeUri"),
        Some(&json!("..")),
        "CodeUri is the workspace root"
    );
    assert_eq!(globals.get("Tracing"), Some(&json!("Active")));

    let mut binaries = BTreeSet::new();
    for (id, function) in functions(&template) {
        assert_eq!(
            function.pointer("/Metadata/BuildMethod"),
            Some(&json!("rust-cargolambda")),
            "{id} is not built by cargo-lambda"
        );
        let binary = function
            .pointer("/Metadata/BuildProperties/Binary")
            .and_then(Json::as_str)
            .unwrap_or_else(|| panic!("{id} names no Binary"));
        assert!(
            binaries.insert(binary.to_owned()),
            "{binary} is deployed twice"
        );
    }
    assert_eq!(binaries, function_names().into_iter().collect());
}

/// Every statement of a function's role, found through its `Role: !GetAtt <Role>.Arn`.
fn role_statements<'a>(template: &'a Json, function: &Json) -> Vec<&'a Json> {
    let role_id = function
        .pointer("/Properties/Role/Fn::GetAtt/0")
        .and_then(Json::as_str)
        .expect("every function has its own role");
    let role = &template["Resources"][role_id];
    role.pointer("/Properties/Policies")
        .and_then(Json::as_array)
        .expect("the role has inline policies")
        .iter()
        .flat_map(|policy| {
            policy
                .pointer("/PolicyDocument/Statement")
                .and_then(Json::as_array)
                .expect("statements")
        })
        .collect()
}

fn actions(statement: &Json) -> Vec<&str> {
    match statement.get("Action") {
        Some(Json::String(action)) => vec![action.as_str()],
        Some(Json::Array(actions)) => actions.iter().filter_map(Json::as_str).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn each_function_has_its_own_role_and_none_may_scan_or_delete_tables() {
    let template = template();
    let mut roles = BTreeSet::new();
    for binary in function_names() {
        let function = function_by_binary(&template, &binary);
        let role = function
            .pointer("/Properties/Role/Fn::GetAtt/0")
            .and_then(Json::as_str)
            .expect("role");
        assert!(
            roles.insert(role.to_owned()),
            "{binary} shares its role {role}"
        );
        for statement in role_statements(&template, function) {
            for action in actions(statement) {
                assert!(
                    !action.contains('*') || action.starts_with("kms:GenerateDataKey"),
                    "{binary}: wildcard action {action}"
                );
                assert!(
                    !matches!(
                        action,
                        "dynamodb:Scan"
                            | "dynamodb:DeleteTable"
                            | "dynamodb:UpdateTable"
                            | "dynamodb:BatchWriteItem"
                    ),
                    "{binary} may {action}"
                );
            }
        }
    }
}

#[test]
fn catalog_cannot_touch_the_table_and_only_refund_expiry_reads_the_open_lots_index() {
    let template = template();
    for binary in function_names() {
        let function = function_by_binary(&template, &binary);
        let statements = role_statements(&template, function);
        let dynamodb_actions: Vec<&str> = statements
            .iter()
            .flat_map(|s| actions(s))
            .filter(|a| a.starts_with("dynamodb:"))
            .collect();
        let index_statements = statements
            .iter()
            .filter(|s| {
                s.get("Resource")
                    .is_some_and(|r| r.to_string().contains("/index/gsi1"))
            })
            .count();
        if binary == "catalog" {
            assert!(
                dynamodb_actions.is_empty(),
                "catalog may {dynamodb_actions:?}"
            );
        }
        if binary == "refund-expiry" {
            assert_eq!(index_statements, 1);
        } else {
            assert_eq!(index_statements, 0, "{binary} may read gsi1");
        }
    }
}

#[test]
fn each_role_names_exactly_the_dynamodb_actions_its_function_uses() {
    // From the ledger's DynamoDB adapter: reads are GetItem and Query; a transaction is
    // authorized by what it contains (conditional Put and Delete, ADD as UpdateItem).
    let expected: [(&str, &[&str]); 9] = [
        ("catalog", &[]),
        ("quote", &["GetItem", "PutItem"]),
        ("purchase", &["GetItem", "PutItem"]),
        ("payment-webhook", &["GetItem", "PutItem", "Query"]),
        ("wallet", &["GetItem", "PutItem", "Query"]),
        ("creators", &["GetItem", "PutItem", "Query"]),
        (
            "gift",
            &["DeleteItem", "GetItem", "PutItem", "Query", "UpdateItem"],
        ),
        ("refund", &["DeleteItem", "GetItem", "PutItem", "Query"]),
        (
            "refund-expiry",
            &[
                "DeleteItem",
                "DescribeStream",
                "GetItem",
                "GetRecords",
                "GetShardIterator",
                "ListStreams",
                "PutItem",
                "Query",
            ],
        ),
    ];
    let template = template();
    for (binary, actions_used) in expected {
        let function = function_by_binary(&template, binary);
        let granted: BTreeSet<&str> = role_statements(&template, function)
            .iter()
            .flat_map(|s| actions(s))
            .filter_map(|a| a.strip_prefix("dynamodb:"))
            .collect();
        assert_eq!(
            granted,
            actions_used.iter().copied().collect(),
            "{binary}'s DynamoDB actions"
        );
    }
}

#[test]
fn the_webhook_secret_is_read_from_secrets_manager_and_never_held_in_the_environment() {
    let template = template();
    let text = template.to_string();
    assert!(
        !text.contains("\"PAYMENT_WEBHOOK_SECRET\""),
        "the plain secret variable is for local runs only"
    );

    let webhook = function_by_binary(&template, "payment-webhook");
    let secret_ref = webhook
        .pointer("/Properties/Environment/Variables/PAYMENT_WEBHOOK_SECRET_ARN/Ref")
        .and_then(Json::as_str)
        .expect("PAYMENT_WEBHOOK_SECRET_ARN is a Ref to the secret");
    assert_eq!(
        template["Resources"][secret_ref]["Type"],
        json!("AWS::SecretsManager::Secret")
    );

    for binary in function_names() {
        let function = function_by_binary(&template, &binary);
        let reads_secret = role_statements(&template, function)
            .iter()
            .any(|s| actions(s).contains(&"secretsmanager:GetSecretValue"));
        assert_eq!(
            reads_secret,
            binary == "payment-webhook",
            "{binary} reading the secret"
        );
    }
}

#[test]
fn refund_expiry_reports_partial_batch_failures_and_dead_letters_what_it_gives_up_on() {
    let template = template();
    let function = function_by_binary(&template, "refund-expiry");
    let events = function
        .pointer("/Properties/Events")
        .and_then(Json::as_object)
        .expect("events");
    let stream = events
        .values()
        .find(|e| e["Type"] == json!("DynamoDB"))
        .expect("a stream event");
    let properties = &stream["Properties"];
    assert_eq!(
        properties["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    assert_eq!(properties["BisectBatchOnFunctionError"], json!(true));
    assert!(
        properties["MaximumRetryAttempts"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );
    let dead_letters = properties
        .pointer("/DestinationConfig/OnFailure/Destination/Fn::GetAtt/0")
        .expect("on-failure destination");
    assert_eq!(
        template["Resources"][dead_letters.as_str().expect("id")]["Type"],
        json!("AWS::SQS::Queue")
    );

    let schedule = events
        .values()
        .find(|e| e["Type"] == json!("Schedule"))
        .expect("a schedule");
    assert!(
        schedule["Properties"]["Schedule"]
            .as_str()
            .is_some_and(|s| s.starts_with("rate("))
    );
}
