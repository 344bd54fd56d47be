//! The deployment agrees with the contract: the SAM template routes exactly the OpenAPI
//! document's operations with the same authorization, deploys the ledger's table definition, and
//! keeps the properties the design relies on (one binary per function, least privilege, Stripe's
//! secrets out of the environment, partial batch failures and dead letters on the stream, the
//! stream filters the functions were written for).

use std::collections::BTreeSet;

use coins_testkit::function_names;
use infra_check::{
    Access, actions, function_by_binary, functions, normalise_table, openapi_routes, read,
    repo_template, resources_of_type, role_statements, template_routes, template_table,
};
use serde_json::{Value as Json, json};

fn template() -> Json {
    repo_template()
}

fn openapi() -> Json {
    serde_json::from_str(&read("api/openapi.json").expect("document readable"))
        .expect("document parses")
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
    assert_eq!(deployed.len(), 25, "the API has 25 routes");
}

#[test]
fn only_the_webhook_is_public_and_only_the_admin_routes_need_the_admin_scope() {
    let deployed = template_routes(&template()).expect("template routes");
    let public: Vec<_> = deployed
        .iter()
        .filter(|(_, a)| **a == Access::Public)
        .map(|(r, _)| r.1.as_str())
        .collect();
    assert_eq!(
        public,
        [
            "/v1/webhooks/app-store",
            "/v1/webhooks/google-play",
            "/v1/webhooks/stripe"
        ]
    );
    let admin: Vec<_> = deployed
        .iter()
        .filter(|(_, a)| matches!(a, Access::Jwt { scopes } if !scopes.is_empty()))
        .map(|(r, a)| (r.1.as_str(), a.clone()))
        .collect();
    let scoped = Access::Jwt {
        scopes: vec!["coins:admin".to_owned()],
    };
    assert_eq!(
        admin,
        [
            ("/v1/admin/purchases/{purchase_id}/refund", scoped.clone()),
            (
                "/v1/admin/creators/{creator_id}/payout-account",
                scoped.clone()
            ),
            ("/v1/admin/users/{user_id}/restriction", scoped),
        ]
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
                        "dynamodb:Scan" | "dynamodb:DeleteTable" | "dynamodb:UpdateTable"
                    ),
                    "{binary} may {action}"
                );
                // Unconditional batch writes only for entries whose content never changes.
                assert!(
                    action != "dynamodb:BatchWriteItem" || binary == "earnings",
                    "{binary} may {action}"
                );
            }
        }
    }
}

#[test]
fn catalog_cannot_touch_the_table_and_each_index_is_read_by_its_one_function() {
    let template = template();
    for binary in function_names() {
        let function = function_by_binary(&template, &binary);
        let statements = role_statements(&template, function);
        let dynamodb_actions: Vec<&str> = statements
            .iter()
            .flat_map(|s| actions(s))
            .filter(|a| a.starts_with("dynamodb:"))
            .collect();
        let indexes: Vec<&str> = ["gsi1", "gsi2"]
            .into_iter()
            .filter(|index| {
                statements.iter().any(|s| {
                    s.get("Resource")
                        .is_some_and(|r| r.to_string().contains(&format!("/index/{index}")))
                })
            })
            .collect();
        if binary == "catalog" {
            assert!(
                dynamodb_actions.is_empty(),
                "catalog may {dynamodb_actions:?}"
            );
        }
        // gsi1: open lots by deadline (the sweep); gsi2: a user's purchases.
        let expected: &[&str] = match binary.as_str() {
            "refund-expiry" => &["gsi1"],
            "purchase" => &["gsi2"],
            _ => &[],
        };
        assert_eq!(indexes, expected, "{binary}'s indexes");
    }
}

#[test]
fn each_role_names_exactly_the_dynamodb_actions_its_function_uses() {
    // From the ledger's DynamoDB adapter: reads are GetItem, Query and BatchGetItem; a
    // transaction is authorized by what it contains (conditional Put and Delete).
    let stream = [
        "DescribeStream",
        "GetRecords",
        "GetShardIterator",
        "ListStreams",
    ];
    let expected: [(&str, &[&str]); 13] = [
        ("catalog", &[]),
        ("quote", &["GetItem", "PutItem"]),
        ("purchase", &["GetItem", "PutItem", "Query"]),
        (
            "stripe-webhook",
            &["DeleteItem", "GetItem", "PutItem", "Query"],
        ),
        ("wallet", &["GetItem", "PutItem", "Query"]),
        ("creators", &["GetItem", "PutItem", "Query"]),
        ("gift", &["GetItem", "PutItem", "Query"]),
        ("refund", &["DeleteItem", "GetItem", "PutItem", "Query"]),
        ("stores", &["DeleteItem", "GetItem", "PutItem", "Query"]),
        (
            "refund-dispatch",
            &[
                "DescribeStream",
                "GetItem",
                "GetRecords",
                "GetShardIterator",
                "ListStreams",
                "PutItem",
            ],
        ),
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
        (
            "earnings",
            &[
                "BatchGetItem",
                "BatchWriteItem",
                "DescribeStream",
                "GetItem",
                "GetRecords",
                "GetShardIterator",
                "ListStreams",
                "PutItem",
            ],
        ),
        (
            "payout-dispatch",
            &[
                "DescribeStream",
                "GetItem",
                "GetRecords",
                "GetShardIterator",
                "ListStreams",
                "PutItem",
            ],
        ),
    ];
    for (binary, used) in &expected {
        if binary.ends_with("dispatch") || ["earnings", "refund-expiry"].contains(binary) {
            assert!(
                stream.iter().all(|a| used.contains(a)),
                "{binary} reads the stream"
            );
        }
    }
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

/// The partition-key prefixes of the items each function writes (from the ledger operations it
/// calls: `shared/ledger/src/table.rs` names the keys). Every write a role may make is limited to
/// them by `dynamodb:LeadingKeys`, so a function that is tricked or broken cannot write another
/// function's items (the gift function cannot touch a purchase or a creator's earnings).
#[test]
fn each_role_writes_only_the_partitions_its_function_owns() {
    let expected: [(&str, &[&str]); 12] = [
        ("quote", &["QUOTE#*"]),
        ("purchase", &["PURCHASE#*", "PAYINTENT#*", "IDEM#*"]),
        // A payment for no purchase is returned from beside its PaymentIntent (`PAYINTENT#`).
        (
            "stripe-webhook",
            &["USER#*", "PURCHASE#*", "PAYINTENT#*", "PAYEVENT#*"],
        ),
        (
            "stores",
            &[
                "USER#*",
                "PURCHASE#*",
                "PAYINTENT#*",
                "PAYEVENT#*",
                "IDEM#*",
            ],
        ),
        ("wallet", &["USER#*"]),
        ("creators", &["CREATOR#*", "IDEM#*"]),
        // Gift entries live under GIFT#, apart from other operations' idempotency records.
        ("gift", &["USER#*", "GIFT#*"]),
        ("refund", &["USER#*", "PURCHASE#*", "IDEM#*"]),
        ("refund-expiry", &["USER#*", "PURCHASE#*"]),
        ("refund-dispatch", &["PURCHASE#*", "PAYINTENT#*"]),
        // GIFT#: a counted gift entry leaves the outstanding index and gets its expiry.
        ("earnings", &["CREATOR#*", "GIFTS#*", "USER#*", "GIFT#*"]),
        ("payout-dispatch", &["CREATOR#*"]),
    ];
    let writes = [
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:UpdateItem",
        "dynamodb:BatchWriteItem",
    ];
    let template = template();
    for (binary, owned) in expected {
        let function = function_by_binary(&template, binary);
        let writing: Vec<&Json> = role_statements(&template, function)
            .into_iter()
            .filter(|s| actions(s).iter().any(|a| writes.contains(a)))
            .collect();
        assert!(!writing.is_empty(), "{binary} writes");
        let mut granted = BTreeSet::new();
        for statement in writing {
            assert!(
                actions(statement).iter().all(|a| writes.contains(a)),
                "{binary}: reads share a statement with writes, so the condition would limit them"
            );
            let condition = statement
                .pointer("/Condition/ForAllValues:StringLike/dynamodb:LeadingKeys")
                .and_then(Json::as_array)
                .unwrap_or_else(|| panic!("{binary}: a write without dynamodb:LeadingKeys"));
            granted.extend(condition.iter().filter_map(Json::as_str));
        }
        assert_eq!(
            granted,
            owned.iter().copied().collect(),
            "{binary}'s writable partitions"
        );
    }
}

#[test]
fn secrets_are_read_from_secrets_manager_and_never_held_in_the_environment() {
    let template = template();
    let text = template.to_string();
    for plain in [
        "\"STRIPE_WEBHOOK_SECRET\"",
        "\"STRIPE_SECRET_KEY\"",
        "\"APPLE_PRIVATE_KEY\"",
        "\"GOOGLE_SERVICE_ACCOUNT\"",
    ] {
        assert!(
            !text.contains(plain),
            "{plain}: the plain variables are for local runs only"
        );
    }
    // Which function reads which secret, by the variable naming its ARN.
    let readers: [(&str, &[&str]); 5] = [
        ("purchase", &["STRIPE_SECRET_KEY_ARN"]),
        ("payout-dispatch", &["STRIPE_SECRET_KEY_ARN"]),
        (
            "stripe-webhook",
            &["STRIPE_SECRET_KEY_ARN", "STRIPE_WEBHOOK_SECRET_ARN"],
        ),
        ("refund-dispatch", &["STRIPE_SECRET_KEY_ARN"]),
        (
            "stores",
            &["APPLE_PRIVATE_KEY_ARN", "GOOGLE_SERVICE_ACCOUNT_ARN"],
        ),
    ];
    for binary in function_names() {
        let function = function_by_binary(&template, &binary);
        let variables = readers
            .iter()
            .find(|(reader, _)| *reader == binary)
            .map_or(&[][..], |(_, variables)| *variables);
        let mut secrets = BTreeSet::new();
        for variable in variables {
            let secret = function
                .pointer(&format!("/Properties/Environment/Variables/{variable}/Ref"))
                .and_then(Json::as_str)
                .unwrap_or_else(|| panic!("{binary}: {variable} is a Ref to a secret"));
            assert_eq!(
                template["Resources"][secret]["Type"],
                json!("AWS::SecretsManager::Secret")
            );
            secrets.insert(secret.to_owned());
        }
        let granted: BTreeSet<String> = role_statements(&template, function)
            .iter()
            .filter(|s| actions(s).contains(&"secretsmanager:GetSecretValue"))
            .flat_map(|s| match &s["Resource"] {
                Json::Array(resources) => resources.clone(),
                resource => vec![resource.clone()],
            })
            .map(|resource| resource["Ref"].as_str().unwrap_or("not a Ref").to_owned())
            .collect();
        assert_eq!(granted, secrets, "{binary} may read exactly its secrets");
    }
}

/// Every function fed by the table's stream: its event's properties.
fn stream_consumers(template: &Json) -> Vec<(String, &Json)> {
    function_names()
        .into_iter()
        .filter_map(|binary| {
            let function = function_by_binary(template, &binary);
            let events = function.pointer("/Properties/Events")?.as_object()?;
            let stream = events.values().find(|e| e["Type"] == json!("DynamoDB"))?;
            Some((binary, &stream["Properties"]))
        })
        .collect()
}

#[test]
fn every_stream_consumer_reports_partial_batch_failures_and_dead_letters_what_it_gives_up_on() {
    let template = template();
    let consumers = stream_consumers(&template);
    let names: Vec<&str> = consumers.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "earnings",
            "payout-dispatch",
            "refund-dispatch",
            "refund-expiry"
        ]
    );
    for (binary, properties) in consumers {
        assert_eq!(
            properties["FunctionResponseTypes"],
            json!(["ReportBatchItemFailures"]),
            "{binary}"
        );
        assert_eq!(properties["BisectBatchOnFunctionError"], json!(true));
        assert!(
            properties["MaximumRetryAttempts"]
                .as_u64()
                .is_some_and(|n| n > 0),
            "{binary}"
        );
        let dead_letters = properties
            .pointer("/DestinationConfig/OnFailure/Destination/Fn::GetAtt/0")
            .and_then(Json::as_str)
            .unwrap_or_else(|| panic!("{binary}: an on-failure destination"));
        assert_eq!(
            template["Resources"][dead_letters]["Type"],
            json!("AWS::SQS::Queue")
        );
        let alarmed = resources_of_type(&template, "AWS::CloudWatch::Alarm")
            .expect("alarms")
            .into_iter()
            .any(|(_, alarm)| {
                alarm.pointer("/Properties/Dimensions/0/Value/Fn::GetAtt/0")
                    == Some(&json!(dead_letters))
            });
        assert!(alarmed, "{binary}: no alarm on {dead_letters}");
    }
}

/// The template's filter of `binary`'s stream event, parsed.
fn template_filter(template: &Json, binary: &str) -> Json {
    let (_, properties) = stream_consumers(template)
        .into_iter()
        .find(|(name, _)| name == binary)
        .expect("a stream consumer");
    let filters = properties
        .pointer("/FilterCriteria/Filters")
        .and_then(Json::as_array)
        .expect("filter criteria");
    assert_eq!(filters.len(), 1, "{binary}: one filter");
    let pattern = filters[0]["Pattern"].as_str().expect("a pattern string");
    serde_json::from_str(pattern).expect("the pattern is JSON")
}

#[test]
fn the_templates_stream_filters_are_the_ones_the_functions_and_the_local_server_use() {
    let template = template();
    for (function, filter) in local_server::streams::consumers() {
        assert_eq!(
            template_filter(&template, function.name()),
            filter,
            "{}: template and code disagree",
            function.name()
        );
    }
}

/// A stream record of `event_name` on the item `pk`/`sk` of `item_type`, by `principal`.
fn record(event_name: &str, sk: &str, item_type: &str, principal: Option<&str>) -> Json {
    let image = json!({"pk": {"S": "USER#alice"}, "sk": {"S": sk}, "item_type": {"S": item_type}});
    let mut record = json!({
        "eventName": event_name,
        "dynamodb": {"Keys": {"pk": image["pk"], "sk": image["sk"]}},
    });
    let side = if event_name == "REMOVE" {
        "OldImage"
    } else {
        "NewImage"
    };
    record["dynamodb"][side] = image;
    if let Some(principal) = principal {
        record["userIdentity"] = json!({"type": "Service", "principalId": principal});
    }
    record
}

/// A filter's verdict on each sample, as the table expects it.
fn assert_filter(template: &Json, binary: &str, samples: &[(&str, Json, bool)]) {
    let filter = template_filter(template, binary);
    for (why, sample, passes) in samples {
        assert_eq!(
            local_server::filter::matches(&filter, sample),
            *passes,
            "{binary}: {why}"
        );
    }
}

#[test]
fn the_templates_stream_filters_pass_exactly_the_records_their_functions_handle() {
    let template = template();
    let ttl = Some("dynamodb.amazonaws.com");
    let fixture = coins_testkit::stream_event("ttl-remove")["Records"][0].clone();
    let lot_marker = |event, principal| record(event, "LOTEXP#pur_1", "lot_marker", principal);
    assert_filter(
        &template,
        "refund-expiry",
        &[
            ("the TTL removal fixture", fixture, true),
            (
                "a TTL removal of a lot marker",
                lot_marker("REMOVE", ttl),
                true,
            ),
            (
                "a user's delete of a lot marker",
                lot_marker("REMOVE", None),
                false,
            ),
            (
                "a TTL removal of another item",
                record("REMOVE", "QUOTE#q_1", "quote", ttl),
                false,
            ),
            (
                "an insert of a lot marker",
                lot_marker("INSERT", None),
                false,
            ),
            (
                "a change of a lot marker",
                lot_marker("MODIFY", None),
                false,
            ),
        ],
    );
    let instruction = |event, principal| record(event, "REFUND#rfd_1", "refund", principal);
    assert_filter(
        &template,
        "refund-dispatch",
        &[
            (
                "a new refund instruction",
                instruction("INSERT", None),
                true,
            ),
            (
                "an instruction claimed or finished",
                instruction("MODIFY", None),
                false,
            ),
            (
                "a new purchase",
                record("INSERT", "PURCHASE#pur_1", "purchase", None),
                false,
            ),
            ("a TTL removal", instruction("REMOVE", ttl), false),
        ],
    );
    // An outstanding gift entry is in the outstanding index (gsi3); a counted one has left it.
    let gift = |event| {
        let mut gift = record(event, "GIFT", "gift", None);
        gift["dynamodb"]["NewImage"]["gsi3pk"] = json!({"S": "OUTSTANDING#gift#3"});
        gift
    };
    assert_filter(
        &template,
        "earnings",
        &[
            ("a gift sent", gift("INSERT"), true),
            (
                "a gift sent with a key whose entry expired, or re-driven",
                gift("MODIFY"),
                true,
            ),
            (
                "a gift entry marked counted",
                record("MODIFY", "GIFT", "gift", None),
                false,
            ),
            (
                "a gift entry removed by TTL",
                record("REMOVE", "GIFT", "gift", ttl),
                false,
            ),
            (
                "an idempotency record",
                record("INSERT", "IDEM", "idempotency", None),
                false,
            ),
            (
                "a history entry",
                record("INSERT", "TXN#00000000000000000002", "history", None),
                false,
            ),
        ],
    );
    let payout = |event| record(event, "PAYOUT#000001772334000000#pay_1", "payout", None);
    assert_filter(
        &template,
        "payout-dispatch",
        &[
            ("a payout requested", payout("INSERT"), true),
            ("a payout claimed or finished", payout("MODIFY"), false),
            (
                "the creator's earnings",
                record("MODIFY", "EARNINGS", "earnings", None),
                false,
            ),
        ],
    );
}

#[test]
fn refund_expiry_also_sweeps_on_a_schedule() {
    let template = template();
    let function = function_by_binary(&template, "refund-expiry");
    let schedule = function
        .pointer("/Properties/Events")
        .and_then(Json::as_object)
        .expect("events")
        .values()
        .find(|e| e["Type"] == json!("Schedule"))
        .expect("a schedule");
    assert!(
        schedule["Properties"]["Schedule"]
            .as_str()
            .is_some_and(|s| s.starts_with("rate("))
    );
}

/// One caller cannot take a route's whole throttle: with `CallerRateLimit` set, a WAF rate-based
/// rule keyed on the bearer token guards the edge clients are given; and the webhooks keep
/// capacity of their own whatever the other routes do.
#[test]
fn callers_are_rate_limited_at_the_edge_and_the_webhooks_keep_their_concurrency() {
    let template = template();
    let acl = &template["Resources"]["EdgeWebAcl"];
    assert_eq!(acl["Condition"], "HasEdge");
    assert_eq!(acl["Properties"]["Scope"], "CLOUDFRONT");
    let per_caller = acl["Properties"]["Rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|rule| rule["Name"] == "per-caller")
        .expect("a per-caller rule");
    let rate = &per_caller["Statement"]["RateBasedStatement"];
    assert_eq!(rate["Limit"]["Ref"], "CallerRateLimit");
    assert_eq!(rate["CustomKeys"][0]["Header"]["Name"], "authorization");
    assert_eq!(
        per_caller["Action"]["Block"]["CustomResponse"]["ResponseCode"],
        429
    );
    let edge = &template["Resources"]["EdgeDistribution"]["Properties"]["DistributionConfig"];
    assert_eq!(edge["WebACLId"]["Fn::GetAtt"][0], "EdgeWebAcl");
    assert!(
        edge["Origins"][0]["DomainName"]
            .to_string()
            .contains("${HttpApi}.execute-api"),
        "the edge fronts the HTTP API"
    );
    for binary in ["stripe-webhook", "stores"] {
        let function = function_by_binary(&template, binary);
        assert_eq!(
            function["Properties"]["ReservedConcurrentExecutions"]["Ref"],
            "WebhookReservedConcurrency",
            "{binary}"
        );
    }
}
